//! `anvil new` end to end: a crate scaffolded into a temporary directory outside this
//! workspace, depending on this checkout by path, builds; its own command verifies its
//! controller (exit code 0, ESR holds); its `cargo test` passes; it is `cargo fmt` clean; and
//! it runs on the real control plane the way its own manifests deploy it (the manifests
//! applied, the command started with the Deployment's arguments and environment under a token
//! of the generated ServiceAccount, as the image's entrypoint would be): a `Website` converges,
//! an edit of it too, with no `Forbidden` in the log.
//!
//! The nested build resolves the same dependency versions as this workspace (`anvil new` copies
//! the checkout's `Cargo.lock`, and the test checks that no other version crept in) and uses a
//! cache target directory outside the repository, `$ANVIL_SCAFFOLD_TARGET_DIR` or
//! `~/.cache/anvil/scaffold-target` (never the workspace's own, whose lock the outer cargo may
//! hold), so that re-runs are incremental. It runs `--offline` when every crate it needs is
//! already in Cargo's cache, and online otherwise. A missing `cargo` fails the test.

mod support;

use anvil_testenv::ControlPlane;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use support::{
    apply_all, eventually, free_port, http_get, of_kind, parse_documents,
    service_account_kubeconfig, start_command_like_deployment,
};

const NAME: &str = "my-operator";

/// This checkout.
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the checkout")
}

/// The nested build's target directory (outside the repository).
fn cache_target() -> PathBuf {
    if let Some(d) = std::env::var_os("ANVIL_SCAFFOLD_TARGET_DIR") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("anvil/scaffold-target")
}

/// A fresh directory under the system's temporary directory; removed when the test passes,
/// kept (and named) when it fails.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let d = std::env::temp_dir().join(format!("anvil-scaffold-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&d).expect("create a temporary directory");
        TempDir(d.canonicalize().expect("the temporary directory"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the scaffolded crate is kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn anvil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anvil"))
        .args(args)
        .output()
        .expect("run anvil")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The cargo that runs this test (`$CARGO`), else `cargo` on the `PATH`.
fn cargo_program() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// Runs cargo in `dir` with the cache target directory; panics (loudly) when cargo cannot be
/// started.
fn cargo(dir: &Path, offline: bool, args: &[&str]) -> Output {
    let mut c = Command::new(cargo_program());
    c.current_dir(dir).args(args);
    if args.first() != Some(&"fmt") {
        c.arg("--target-dir").arg(cache_target());
    }
    if offline {
        c.arg("--offline");
    }
    // What the outer cargo set for this test binary must not leak into the nested build.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_MANIFEST_DIR",
    ] {
        c.env_remove(var);
    }
    let t = Instant::now();
    let out = c.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} (is cargo installed and on the PATH?): {e}",
            cargo_program().display()
        )
    });
    eprintln!(
        "cargo {}{}: {:.1} s, {}",
        args.join(" "),
        if offline { " --offline" } else { "" },
        t.elapsed().as_secs_f64(),
        out.status
    );
    out
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `(name, version)` of every package of a `Cargo.lock`.
fn locked_packages(lock: &Path) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(lock).expect("read Cargo.lock");
    let mut out = BTreeSet::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ")
            && let Some(n) = name.take()
        {
            out.insert((n, v.trim_matches('"').to_string()));
        }
    }
    out
}

#[test]
fn a_scaffolded_operator_builds_verifies_and_passes_its_tests() {
    let checkout = checkout();
    let tmp = TempDir::new();
    assert!(
        !tmp.0.starts_with(&checkout),
        "the temporary directory {} must be outside the workspace",
        tmp.0.display()
    );
    let dir = tmp.0.join(NAME);
    let out = anvil(&[
        "new",
        NAME,
        "--path",
        dir.to_str().expect("a UTF-8 temporary path"),
        "--anvil-path",
        checkout.to_str().expect("a UTF-8 checkout path"),
    ]);
    assert_ok("anvil new", &out);
    assert!(
        text(&out.stdout).contains("verify website"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        std::fs::read(dir.join("Cargo.lock")).expect("the copied Cargo.lock"),
        std::fs::read(checkout.join("Cargo.lock")).expect("the checkout's Cargo.lock"),
        "anvil new copies the checkout's Cargo.lock"
    );

    // Offline when every crate the build needs is in Cargo's cache already (resolving the
    // copied lock needs nothing else); online when the offline build says it lacks a crate.
    let mut offline = true;
    let mut build = cargo(&dir, true, &["build"]);
    if !build.status.success() && text(&build.stderr).contains("--offline") {
        offline = false;
        build = cargo(&dir, false, &["build"]);
    }
    eprintln!(
        "nested build {} in {}",
        if offline { "offline" } else { "online" },
        cache_target().display()
    );
    assert_ok("cargo build", &build);

    // No other version than this workspace's: the copied lock was kept, only pruned.
    let ours = locked_packages(&checkout.join("Cargo.lock"));
    let theirs = locked_packages(&dir.join("Cargo.lock"));
    let new: Vec<_> = theirs
        .difference(&ours)
        .filter(|(n, _)| n != NAME)
        .collect();
    assert!(
        new.is_empty(),
        "versions not in this workspace's lock: {new:?}"
    );

    let bin = cache_target().join("debug").join(NAME);
    let run = |args: &[&str]| {
        Command::new(&bin)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()))
    };
    let list = run(&["list"]);
    assert_ok("list", &list);
    assert!(
        text(&list.stdout).starts_with("website"),
        "{}",
        text(&list.stdout)
    );
    let crd = run(&["crd", "website"]);
    assert_ok("crd website", &crd);
    let crd = text(&crd.stdout);
    assert!(
        crd.contains("name: websites.my-operator.example.com"),
        "{crd}"
    );
    assert!(crd.contains("x-kubernetes-validations"), "{crd}");
    let manifests = run(&["manifests", "website"]);
    assert_ok("manifests website", &manifests);
    let manifests = text(&manifests.stdout);
    assert!(
        manifests.contains("name: my-operator-website"),
        "{manifests}"
    );
    assert!(
        manifests.contains("image: my-operator:latest"),
        "{manifests}"
    );

    let t = Instant::now();
    let verify = run(&["verify", "website", "--no-progress"]);
    eprintln!("verify website: {:.1} s", t.elapsed().as_secs_f64());
    let report = text(&verify.stdout);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "verify website must hold:\n{report}\n{}",
        text(&verify.stderr)
    );
    assert!(report.contains("property esr"), "{report}");
    assert!(report.contains("HOLDS (complete search)"), "{report}");
    assert!(!report.contains("VIOLATED"), "{report}");

    let test = cargo(&dir, offline, &["test"]);
    assert_ok("cargo test", &test);
    let test_out = text(&test.stdout);
    for name in [
        "website_verifies_at_its_default_scope",
        "a_controller_that_never_writes_the_status_is_caught",
        "the_rules_are_evaluated_from_the_crd",
    ] {
        assert!(test_out.contains(&format!("{name} ... ok")), "{test_out}");
    }

    assert_ok(
        "cargo fmt --check",
        &cargo(&dir, false, &["fmt", "--check"]),
    );

    runs_like_its_deployment(&bin, &dir);
}

/// Whether `obj` names the object with `uid` as its controller.
fn controlled_by(obj: &Value, uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["controller"] == true && r["uid"] == uid)
}

/// Deploys the scaffolded operator as its manifests say (the image's entrypoint is the
/// command: checked in its Dockerfile) and checks that a `Website` and an edit of it converge.
fn runs_like_its_deployment(bin: &Path, dir: &Path) {
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).expect("the Dockerfile");
    assert!(
        dockerfile.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{NAME}\"]"))
            && dockerfile.contains(&format!("cp target/release/{NAME} ")),
        "{dockerfile}"
    );
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(converges_on_the_control_plane(bin));
}

async fn converges_on_the_control_plane(bin: &Path) {
    let cp = ControlPlane::shared().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    let client = cp.client().await.expect("a client");
    let ns = cp.fresh_namespace("scaffold").await.expect("a namespace");
    let port = free_port();
    let port_arg = port.to_string();
    let out = Command::new(bin)
        .args(["manifests", "website", "--namespace", &ns])
        .args(["--watch-namespace", &ns, "--metrics-port", &port_arg])
        .output()
        .expect("run manifests");
    assert_ok("manifests website", &out);
    let docs = parse_documents(&text(&out.stdout));
    let container = &of_kind(&docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container.get("command").is_none(),
        "the image's entrypoint must run: {container}"
    );
    assert_eq!(container["args"][0], "run", "{container}");
    assert_eq!(container["args"][1], "website", "{container}");
    apply_all(cp, &client, &docs).await;
    let account = of_kind(&docs, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .expect("the ServiceAccount's name")
        .to_string();
    let kubeconfig = service_account_kubeconfig(cp, &client, &ns, &account).await;
    let running = start_command_like_deployment(bin, &docs, &kubeconfig, &[]);

    let gvk = GroupVersionKind::gvk(&format!("{NAME}.example.com"), "v1", "Website");
    let sites: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &ApiResource::from_gvk(&gvk));
    let site = DynamicObject::new("web", &ApiResource::from_gvk(&gvk))
        .within(&ns)
        .data(json!({"spec": {"replicas": 2, "image": "nginx:1", "content": "hello"}}));
    let site = sites
        .create(&PostParams::default(), &site)
        .await
        .expect("the Website is accepted");
    let uid = site.metadata.uid.clone().expect("a uid");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let stateful_sets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);

    let converged = |content: &'static str| {
        let (config_maps, stateful_sets, sites, uid) = (&config_maps, &stateful_sets, &sites, &uid);
        move || async move {
            let (Ok(Some(cm)), Ok(Some(sts)), Ok(site)) = (
                config_maps.get_opt("web-content").await,
                stateful_sets.get_opt("web").await,
                sites.get("web").await,
            ) else {
                return false;
            };
            let (cm, sts) = (json!(cm), json!(sts));
            controlled_by(&cm, uid)
                && controlled_by(&sts, uid)
                && cm["data"]["index.html"] == content
                && sts["spec"]["replicas"] == 2
                && sts["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
                && site.data["status"]["readyReplicas"].is_i64()
        }
    };
    let timeout = Duration::from_secs(90);
    eventually(timeout, converged("hello"), || {
        format!("the Website did not converge:\n{}", running.logs())
    })
    .await;
    sites
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"content": "bye"}})),
        )
        .await
        .expect("the edit is accepted");
    eventually(timeout, converged("bye"), || {
        format!("the edited Website did not converge:\n{}", running.logs())
    })
    .await;
    assert_eq!(
        http_get(port, "/readyz").map(|(code, _)| code),
        Some(200),
        "{}",
        running.logs()
    );
    let logs = running.logs();
    assert!(
        !logs.contains("Forbidden") && !logs.contains("forbidden"),
        "{logs}"
    );
}

#[test]
fn new_refuses_bad_input_with_a_clear_error() {
    let help = text(&anvil(&["--help"]).stdout);
    assert!(
        help.contains("Create a standalone operator crate"),
        "{help}"
    );

    let tmp = TempDir::new();
    let busy = tmp.0.join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let out = anvil(&["new", "my-op", "--path", busy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not empty"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1, "left alone");

    let fresh = tmp.0.join("fresh");
    for bad in ["My-Op", "fn", "anvil", "op.erator", ""] {
        let out = anvil(&["new", bad, "--path", fresh.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("invalid crate name"),
            "{bad:?}: {}",
            text(&out.stderr)
        );
        assert!(!fresh.exists(), "{bad:?}: nothing is created");
    }

    let out = anvil(&[
        "new",
        "my-op",
        "--path",
        fresh.to_str().unwrap(),
        "--anvil-path",
        tmp.0.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not an Anvil checkout"),
        "{}",
        text(&out.stderr)
    );
    assert!(!fresh.exists());
}
