//! The built binary: exit codes and the JSON schema.

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
        "demo-stale-update",
        "demo-alreadyexists-fatal",
        "demo-adopt-orphan",
        "demo-no-done-on-failure",
        "zookeeper",
        "zookeeper-569",
        "zookeeper-adopt",
    ] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{out}");
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
    assert!(["holds", "violated", "incomplete"].contains(&r["verdict"].as_str().unwrap()));
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
