//! `chain::overlay_json` keeps what the API server filled in, so a reconcile of an unchanged
//! object writes nothing (on a real cluster as in the model).

use anvil_reconciler::chain::overlay_json;
use serde_json::json;

#[test]
fn volume_claim_templates_are_merged_by_metadata_name() {
    // As stored by a real API server: it filled in volumeMode and a status.
    let mut stored = json!({"volumeClaimTemplates": [{
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                 "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"}
    }]});
    let before = stored.clone();
    let desired = json!({"volumeClaimTemplates": [{
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }]});
    overlay_json(&mut stored, &desired);
    assert_eq!(stored, before, "nothing to write");
}

#[test]
fn lists_with_other_names_are_replaced() {
    let mut stored = json!({"ports": [{"name": "a", "port": 1, "protocol": "TCP"}]});
    overlay_json(&mut stored, &json!({"ports": [{"name": "b", "port": 2}]}));
    assert_eq!(stored, json!({"ports": [{"name": "b", "port": 2}]}));
    let mut named = json!({"ports": [{"name": "a", "port": 1, "protocol": "TCP"}]});
    overlay_json(&mut named, &json!({"ports": [{"name": "a", "port": 3}]}));
    assert_eq!(
        named,
        json!({"ports": [{"name": "a", "port": 3, "protocol": "TCP"}]})
    );
}
