//! The built binary: exit codes and the JSON schema.

use serde::Deserialize;
use serde_json::Value;
use std::process::Command;

fn anvil(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anvil"))
        .args(args)
        .output()
        .expect("run anvil");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_names_every_controller() {
    let (code, out, _) = anvil(&["list"]);
    assert_eq!(code, 0);
    for name in [
        "demo",
        "demo-recreate",
        "demo-stale-update",
        "demo-alreadyexists-fatal",
        "demo-adopt-orphan",
        "demo-no-done-on-failure",
        "zookeeper",
        "zookeeper-569",
        "zookeeper-recreate",
        "zookeeper-adopt",
        "rabbitmq",
        "rabbitmq-stale-scale-down",
        "rabbitmq-cookie-rotation",
        "rabbitmq-config-no-roll",
        "fluent",
        "fluent-other-writer",
        "fluentbit",
        "fluentbit-config",
        "fluent-early-daemonset",
        "fluent-config-writes-daemonset",
    ] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{out}");
    }
}

/// `crd` prints every CRD the process serves: one for a single controller, both for the
/// fluent pair that `run fluent` runs in one process.
#[test]
fn crd_prints_every_crd_of_the_process() {
    let kinds = |name: &str| -> Vec<String> {
        let (code, out, err) = anvil(&["crd", name]);
        assert_eq!(code, 0, "{err}");
        serde_yaml::Deserializer::from_str(&out)
            .map(|doc| {
                let v = Value::deserialize(doc).expect("a YAML document");
                assert_eq!(v["kind"], "CustomResourceDefinition", "{v}");
                v["spec"]["names"]["kind"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(kinds("zookeeper"), ["ZookeeperCluster"]);
    assert_eq!(kinds("fluentbit-config"), ["FluentBitConfig"]);
    for pair in ["fluent", "fluent-other-writer"] {
        assert_eq!(kinds(pair), ["FluentBit", "FluentBitConfig"], "{pair}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(anvil(&["verify", "no-such-controller"]).0, 2);
    assert_eq!(anvil(&["verify"]).0, 2);
    assert_eq!(anvil(&["verify", "demo", "--state-limit", "many"]).0, 2);
    assert_eq!(anvil(&["verify", "demo", "--threads", "0"]).0, 2);
}

fn check_result_schema(r: &Value) {
    for f in [
        "property",
        "verdict",
        "complete",
        "states",
        "transitions",
        "seconds",
        "peak_memory_bytes",
        "scope",
    ] {
        assert!(r.get(f).is_some(), "missing {f} in {r}");
    }
    assert!(
        ["holds", "violated", "vacuous", "incomplete"].contains(&r["verdict"].as_str().unwrap())
    );
    let cov = &r["coverage"];
    assert!(cov["complete"].is_boolean(), "coverage in {r}");
    for sc in cov["specs"].as_array().expect("coverage.specs") {
        assert!(sc["premise_reached"].is_boolean() && sc["desired_state_reached"].is_boolean());
    }
    assert!(r["complete"].is_boolean());
    assert!(r["states"].is_u64() && r["transitions"].is_u64() && r["peak_memory_bytes"].is_u64());
    assert!(r["seconds"].is_f64() || r["seconds"].is_u64());
    assert!(r["scope"].is_object());
}

#[test]
fn violation_exits_1_with_a_json_counterexample() {
    let (code, out, err) = anvil(&["verify", "demo-no-done-on-failure", "--format", "json"]);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(v["controller"], "demo-no-done-on-failure");
    let results = v["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        check_result_schema(r);
    }
    let esr = results.iter().find(|r| r["property"] == "esr").unwrap();
    assert_eq!(esr["verdict"], "violated");
    let cx = &esr["counterexample"];
    assert!(cx["prefix"].as_array().is_some_and(|p| !p.is_empty()));
    assert!(cx["cycle"].as_array().is_some_and(|c| !c.is_empty()));
    for step in cx["prefix"].as_array().unwrap() {
        assert!(step["actor"].is_string() && step["action"].is_string());
        assert!(step["changes"].is_array());
    }
    assert_eq!(esr["counterexample_validated"], true);
}

#[test]
fn incomplete_search_exits_3() {
    let (code, out, _) = anvil(&["verify", "demo", "--state-limit", "50", "--format", "json"]);
    assert_eq!(code, 3);
    let v: Value = serde_json::from_str(&out).unwrap();
    for r in v["results"].as_array().unwrap() {
        check_result_schema(r);
        assert_eq!(r["verdict"], "incomplete");
        assert_eq!(r["complete"], false);
    }
}

#[test]
fn text_output_prints_the_scope_and_the_counterexample() {
    let (code, out, _) = anvil(&["verify", "demo-adopt-orphan"]);
    assert_eq!(code, 1);
    assert!(out.contains("scope:"), "{out}");
    assert!(out.contains("VIOLATED"), "{out}");
    assert!(out.contains("accepted by the trace validator"), "{out}");
}

/// A demo scope file body: these specs, no edits, no deletes, no faults.
fn demo_scope(specs: &[&str]) -> String {
    let specs: String = specs.iter().map(|s| format!("  - {s}\n")).collect();
    format!(
        "namespace: default\nname: demo\nspecs:\n{specs}max_edits: 0\nmax_deletes: 0\n\
         faults: {{crash: false, drop: false, other_deletes: 0, pod_losses: 0}}\n\
         max_stale_requests: 1\n"
    )
}

fn scope_file(name: &str, body: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("anvil-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn scope_flags_change_the_effective_scope_printed_in_the_json() {
    let (code, out, err) = anvil(&[
        "verify",
        "demo-no-done-on-failure",
        "--format",
        "json",
        "--edits",
        "0",
        "--stale",
        "2",
        "--no-crash",
        "--transient",
        "--lost-responses",
        "--other-writers",
        "1",
        "--object-bound",
        "5",
        // only the effective scope is under test here: keep the search short
        "--state-limit",
        "2000",
    ]);
    assert!(code == 1 || code == 3, "{code}: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let sc = &v["scope"];
    assert_eq!(sc["max_edits"], 0);
    assert_eq!(sc["max_stale_requests"], 2);
    assert_eq!(sc["max_objects_per_kind"], 5);
    assert_eq!(sc["faults"]["crash"], false);
    assert_eq!(sc["faults"]["transient"], true);
    assert_eq!(sc["faults"]["lost_response"], true);
    assert_eq!(sc["faults"]["other_deletes"], 1);
    assert_eq!(sc["faults"]["other_updates"], 1);
    assert!(v["assumptions"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(v["fingerprint_collision_bound"].is_number());
}

#[test]
fn bad_scope_flags_and_files_are_usage_errors() {
    assert_eq!(anvil(&["verify", "demo", "--crs", "0"]).0, 2);
    assert_eq!(anvil(&["verify", "demo", "--no-drop", "--transient"]).0, 2);
    assert_eq!(anvil(&["verify", "demo", "--edits", "many"]).0, 2);
    let (code, _, err) = anvil(&["verify", "demo", "--scope", "/no/such/scope.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read the scope file"), "{err}");
    let garbage = scope_file("garbage.yaml", "namespace: [");
    let (code, _, err) = anvil(&["verify", "demo", "--scope", garbage.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid scope file"), "{err}");
}

/// `--crs 2`: two custom resources in one check, each with its own ESR property and
/// coverage; the shared-name bug that one custom resource cannot show is caught. (The correct
/// demo with two custom resources explores 288,417 states: `anvil-demo`'s release-build test
/// `demo_holds_with_two_custom_resources` checks that it holds.)
#[test]
fn two_custom_resources_are_checked_together() {
    let file = scope_file(
        "one-spec.yaml",
        &demo_scope(&["{replicas: 1, image: nginx, message: hello}"]),
    );
    let run = |crs: &str| {
        anvil(&[
            "verify",
            "demo-shared-config",
            "--scope",
            file.to_str().unwrap(),
            "--crs",
            crs,
            "--format",
            "json",
            "--no-progress",
        ])
    };
    let (code, out, err) = run("2");
    assert_eq!(code, 1, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["scope"]["crs"], 2);
    let verdict = |name: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["property"] == name)
            .map(|r| r["verdict"].as_str().unwrap().to_string())
    };
    // whichever DemoApp creates the shared ConfigMap first, the other never matches
    assert_eq!(verdict("esr").as_deref(), Some("violated"), "{out}");
    assert_eq!(verdict("esr:demo-2").as_deref(), Some("violated"), "{out}");
    let crs: Vec<&str> = v["coverage"]["specs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cr"].as_str().unwrap())
        .collect();
    assert_eq!(crs, ["demo", "demo-2"]);
    let (code, out, err) = run("1");
    assert_eq!(
        code, 0,
        "one custom resource cannot show the bug: {err}\n{out}"
    );
}

/// A spec the CRD's rules reject would make ESR hold vacuously: it is a configuration error
/// that names the spec and the rule, and nothing is checked.
#[test]
fn a_scope_spec_rejected_by_the_crd_is_a_configuration_error() {
    let file = scope_file(
        "rejected.yaml",
        &demo_scope(&["{replicas: -1, image: nginx, message: hello}"]),
    );
    let (code, out, _) = anvil(&[
        "verify",
        "demo",
        "--scope",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 2, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "config_error");
    let e = v["config_error"].as_str().unwrap();
    assert!(e.contains("spec #0") && e.contains("replicas"), "{e}");
    assert!(v["results"].as_array().unwrap().is_empty());
}

/// A scope file replaces the default scope: a single spec, no faults, holds with coverage.
#[test]
fn a_scope_file_is_checked_with_coverage() {
    let file = scope_file(
        "small.yaml",
        &demo_scope(&["{replicas: 1, image: nginx, message: hello}"]),
    );
    let (code, out, err) = anvil(&[
        "verify",
        "demo",
        "--scope",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["scope"]["specs"].as_array().unwrap().len(), 1);
    let cov = &v["coverage"]["specs"][0];
    assert_eq!(cov["premise_reached"], true);
    assert_eq!(cov["desired_state_reached"], true);
}

/// A spec that no behaviour reaches (here: an edit target with no edit allowed) proves nothing
/// about it: ESR is reported `vacuous` (exit 4), never `holds`.
#[test]
fn an_unreached_spec_makes_esr_vacuous() {
    let file = scope_file(
        "unreached.yaml",
        &demo_scope(&[
            "{replicas: 1, image: nginx, message: hello}",
            "{replicas: 2, image: nginx, message: bye}",
        ]),
    );
    let (code, out, _) = anvil(&[
        "verify",
        "demo",
        "--scope",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 4, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "vacuous");
    let esr = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["property"] == "esr")
        .unwrap();
    assert_eq!(esr["verdict"], "vacuous");
    assert!(esr["reason"].as_str().unwrap().contains("spec #1"), "{esr}");
    assert_eq!(v["coverage"]["specs"][1]["premise_reached"], false);
}
