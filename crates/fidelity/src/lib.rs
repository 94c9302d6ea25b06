//! Differential tests of the cluster model against a real kube-apiserver (work in progress).
