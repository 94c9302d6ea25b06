//! Measures the cost of cloning and hashing a StatefulSet-sized object, the operations the
//! checker performs millions of times: `cargo run --release -p anvil-objects --example object_costs`.

use anvil_objects::DynamicObject;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::time::Instant;

fn main() {
    let sts = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "zk", "namespace": "default", "resourceVersion": "12", "uid": "u-1",
            "labels": {"app": "zk", "release": "zk"},
            "ownerReferences": [{"apiVersion": "zookeeper.anvil.dev/v1", "kind": "ZookeeperCluster",
                "name": "zk", "uid": "u-0", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": 3, "serviceName": "zk-headless", "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": {"app": "zk"}},
            "template": {"metadata": {"labels": {"app": "zk"}, "annotations": {"config": "11"}},
                "spec": {"containers": [{"name": "zookeeper", "image": "zookeeper:3.8",
                    "ports": [{"name": "client", "containerPort": 2181}, {"name": "quorum", "containerPort": 2888},
                              {"name": "leader-election", "containerPort": 3888}, {"name": "metrics", "containerPort": 7000},
                              {"name": "admin-server", "containerPort": 8080}],
                    "command": ["/usr/local/bin/zookeeperStart.sh"],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "conf", "mountPath": "/conf"}],
                    "readinessProbe": {"exec": {"command": ["zookeeperReady.sh"]}, "initialDelaySeconds": 10},
                    "livenessProbe": {"exec": {"command": ["zookeeperLive.sh"]}, "initialDelaySeconds": 10}}],
                  "volumes": [{"name": "conf", "configMap": {"name": "zk-configmap"}}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}}}]},
        "status": {"replicas": 3, "readyReplicas": 3}
    });
    let bytes = serde_json::to_vec(&sts).unwrap().len();
    let n = 200_000u32;

    let t = Instant::now();
    let mut obj = DynamicObject::from_json(sts.clone()).unwrap();
    for _ in 0..10_000 {
        obj = DynamicObject::from_json(sts.clone()).unwrap();
    }
    let build_ns = t.elapsed().as_nanos() as f64 / 10_000.0;

    let t = Instant::now();
    let mut clones = Vec::with_capacity(n as usize);
    for _ in 0..n {
        clones.push(std::hint::black_box(&obj).clone());
    }
    let clone_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
    drop(clones);

    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    let t = Instant::now();
    let mut acc = 0u64;
    for _ in 0..n {
        acc ^= hasher.hash_one(std::hint::black_box(&obj));
    }
    let hash_ns = t.elapsed().as_nanos() as f64 / f64::from(n);

    let copy = DynamicObject::from_json(sts).unwrap();
    let t = Instant::now();
    let mut equal = 0u32;
    for _ in 0..n {
        equal += u32::from(std::hint::black_box(&obj) == std::hint::black_box(&copy));
    }
    let eq_ns = t.elapsed().as_nanos() as f64 / f64::from(n);

    println!(
        "{{\"object_json_bytes\":{bytes},\"build_and_fingerprint_ns\":{build_ns:.0},\"clone_ns\":{clone_ns:.1},\"hash_ns\":{hash_ns:.1},\"deep_eq_ns\":{eq_ns:.0},\"check\":{}}}",
        (acc != 1) as u8 + (equal == n) as u8
    );
}
