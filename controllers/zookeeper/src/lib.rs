//! Example controller: zookeeper (work in progress).
