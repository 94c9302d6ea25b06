//! Deploying a controller on the test control plane the way `anvil manifests` says: apply its
//! objects (CRD, Namespace, ServiceAccount, RBAC, binding, Deployment) with the admin client,
//! then run the `anvil` binary with the Deployment's arguments and environment under the
//! ServiceAccount's token (the machine has no container engine and the control plane no
//! kubelet, so the Deployment's pod never runs: the test process stands in for it).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_testenv::ControlPlane;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;

/// The `anvil` binary under test.
pub fn anvil(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_anvil"));
    c.args(args);
    c
}

/// The manifests with the Deployment's `--metrics-port` set to `port` (for a second replica
/// on the same machine).
pub fn with_metrics_port(docs: &[Value], port: u16) -> Vec<Value> {
    let mut docs = docs.to_vec();
    let args =
        one_mut(&mut docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array_mut()
            .expect("args");
    let i = args
        .iter()
        .position(|a| a == "--metrics-port")
        .expect("--metrics-port");
    args[i + 1] = Value::String(port.to_string());
    docs
}

/// `GET path` on 127.0.0.1:`port`: (status code, body); `None` while nothing listens.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// The value of the sample of metric `name` whose labels include `labels`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let (metric, rest) = match l.find(['{', ' ']) {
                Some(i) => l.split_at(i),
                None => return false,
            };
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `anvil manifests <args>`, parsed into one JSON value per YAML document.
pub fn manifests(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["manifests"];
    all.extend_from_slice(args);
    let out = anvil(&all).output().expect("anvil runs");
    assert!(
        out.status.success(),
        "anvil {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_documents(&String::from_utf8(out.stdout).expect("UTF-8 YAML"))
}

/// Multi-document YAML (what `manifests` prints), one JSON value per document.
pub fn parse_documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(d).expect("YAML document");
            serde_json::to_value(v).expect("YAML is JSON")
        })
        .collect()
}

/// The documents of kind `kind`.
pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The document of kind `kind` named `name`, mutably.
pub fn named_mut<'a>(docs: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
    docs.iter_mut()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the manifests"))
}

/// The one document of kind `kind`, mutably.
pub fn one_mut<'a>(docs: &'a mut [Value], kind: &str) -> &'a mut Value {
    let mut found = docs.iter_mut().filter(|d| d["kind"] == kind);
    let one = found
        .next()
        .unwrap_or_else(|| panic!("no {kind} in the manifests"));
    assert!(found.next().is_none(), "several {kind}s in the manifests");
    one
}

async fn apply<K>(api: Api<K>, doc: &Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", doc["kind"]));
    let name = doc["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_string();
    api.patch(
        &name,
        &PatchParams::apply("anvil-tests").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap_or_else(|e| panic!("the API server rejects {} {name}: {e}", doc["kind"]));
}

/// Applies every document with the admin client (the CRD is waited for until Established;
/// an existing Namespace is kept).
pub async fn apply_all(cp: &ControlPlane, client: &kube::Client, docs: &[Value]) {
    for doc in docs {
        let ns = doc["metadata"]["namespace"].as_str().unwrap_or_default();
        match doc["kind"].as_str().unwrap_or_default() {
            "CustomResourceDefinition" => {
                let crd: CustomResourceDefinition = serde_json::from_value(doc.clone()).unwrap();
                cp.apply_crd(crd).await.expect("the CRD is established");
            }
            "Namespace" => {
                let n: Namespace = serde_json::from_value(doc.clone()).unwrap();
                match Api::<Namespace>::all(client.clone())
                    .create(&PostParams::default(), &n)
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => panic!("cannot create the namespace: {e}"),
                }
            }
            "ServiceAccount" => {
                apply::<ServiceAccount>(Api::namespaced(client.clone(), ns), doc).await
            }
            "ClusterRole" => apply::<ClusterRole>(Api::all(client.clone()), doc).await,
            "ClusterRoleBinding" => {
                apply::<ClusterRoleBinding>(Api::all(client.clone()), doc).await
            }
            "Role" => apply::<Role>(Api::namespaced(client.clone(), ns), doc).await,
            "RoleBinding" => apply::<RoleBinding>(Api::namespaced(client.clone(), ns), doc).await,
            "Deployment" => apply::<Deployment>(Api::namespaced(client.clone(), ns), doc).await,
            other => panic!("unexpected kind {other} in the manifests"),
        }
    }
}

/// A kubeconfig file for the ServiceAccount `namespace/name`, with a token from the
/// TokenRequest API (what the kubelet mounts into the Deployment's pod).
pub async fn service_account_kubeconfig(
    cp: &ControlPlane,
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> PathBuf {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let tr = accounts
        .create_token_request(
            name,
            &PostParams::default(),
            &TokenRequest {
                spec: TokenRequestSpec {
                    audiences: Vec::new(),
                    expiration_seconds: Some(3600),
                    bound_object_ref: None,
                },
                ..Default::default()
            },
        )
        .await
        .expect("a token for the ServiceAccount");
    let token = tr.status.expect("a token").token;
    let admin = std::fs::read_to_string(cp.kubeconfig_path()).unwrap();
    assert!(admin.contains(cp.token()));
    let path = std::env::temp_dir().join(format!(
        "anvil-sa-{namespace}-{name}-{}.kubeconfig",
        std::process::id()
    ));
    std::fs::write(&path, admin.replace(cp.token(), &token)).unwrap();
    path
}

/// A controller process started like the Deployment's container; killed on drop.
pub struct Running {
    child: Child,
    log: PathBuf,
    /// `POD_NAME` as given to the process (its leader-election identity).
    pub pod_name: String,
}

impl Running {
    /// Starts `cmd` with its stderr written to `log` (removed on drop) and stdout discarded.
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> Running {
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("the controller starts");
        Running {
            child,
            log,
            pod_name: String::new(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Starts `anvil` with the Deployment's container arguments and environment (values from
/// the downward API get stand-ins), `KUBECONFIG` pointing at `kubeconfig` (in a pod: the
/// mounted ServiceAccount token), plus `extra` arguments.
pub fn start_like_deployment(docs: &[Value], kubeconfig: &PathBuf, extra: &[&str]) -> Running {
    start_command_like_deployment(
        std::path::Path::new(env!("CARGO_BIN_EXE_anvil")),
        docs,
        kubeconfig,
        extra,
    )
}

/// [`start_like_deployment`] for another operator command than `anvil` (the image's
/// entrypoint), e.g. one built outside this workspace.
pub fn start_command_like_deployment(
    command: &std::path::Path,
    docs: &[Value],
    kubeconfig: &PathBuf,
    extra: &[&str],
) -> Running {
    let deployment = of_kind(docs, "Deployment")[0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("the container has args")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let mut cmd = Command::new(command);
    cmd.args(&args).args(extra);
    cmd.env_remove("RUST_LOG");
    let mut pod_name = String::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap();
        let value = match (
            e["value"].as_str(),
            e["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        ) {
            (Some(v), _) => v.to_string(),
            (None, Some("metadata.namespace")) => deployment["metadata"]["namespace"]
                .as_str()
                .unwrap()
                .to_string(),
            (None, Some("metadata.name")) => format!(
                "{}-test-pod-{}",
                deployment["metadata"]["name"].as_str().unwrap(),
                free_port()
            ),
            other => panic!("unexpected env var {name}: {other:?}"),
        };
        if name == "POD_NAME" {
            pod_name = value.clone();
        }
        cmd.env(name, value);
    }
    cmd.env("KUBECONFIG", kubeconfig);
    let log = std::env::temp_dir().join(format!(
        "anvil-controller-{}-{}.log",
        std::process::id(),
        free_port()
    ));
    let file = std::fs::File::create(&log).unwrap();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .expect("anvil starts");
    Running {
        child,
        log,
        pod_name,
    }
}

/// The objects of `kinds` in `namespace`, as the shim reads them (a `ClusterView`).
pub async fn snapshot(
    client: &kube::Client,
    namespace: &str,
    kinds: &[Kind],
) -> BTreeMap<ObjectRef, DynamicObject> {
    anvil_shim::list_view(client, namespace, kinds.iter().cloned())
        .await
        .unwrap_or_else(|e| panic!("listing {kinds:?}: {e:?}"))
}

/// The Events in `namespace` about the object named `name`.
pub async fn events_about(client: &kube::Client, namespace: &str, name: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("events list")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .and_then(|r| r.name.as_deref())
                .is_some_and(|n| n == name)
        })
        .collect()
}

/// Polls `check` every 250 ms until it returns true; panics with `what()` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F, what: impl Fn() -> String)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out: {}", what());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
