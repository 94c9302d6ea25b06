//! `manifests <controller>`: everything needed to deploy a controller on a cluster, as
//! one multi-document YAML stream for `kubectl apply -f -`:
//!
//! 1. its CustomResourceDefinition;
//! 2. the Namespace of the operator;
//! 3. a ServiceAccount;
//! 4. a least-privilege ClusterRole (or, with `--watch-namespace`, a Role in that namespace):
//!    exactly the permissions the reconciler's requests need (declared in the controller's
//!    `ShimConfig` and checked against every request of the model's verification scope by
//!    `tests/permissions.rs`) plus the shim's own (`list`/`watch` of the custom resource and
//!    the owned kinds, `get` of the custom resource, `create`/`patch` of `events.k8s.io`
//!    Events), one rule per resource;
//! 5. its ClusterRoleBinding (or RoleBinding);
//! 6. a Role and RoleBinding for the leader-election Lease in the operator's namespace
//!    (`get`, `create`, `patch` on `coordination.k8s.io` Leases; not with
//!    `--no-leader-election`);
//! 7. a Deployment of 2 replicas (`--replicas`) running `<command> run <controller>
//!    --leader-election` (one leads, the other stands by), with `/metrics`, `/healthz` and
//!    `/readyz` on the metrics port (probes and Prometheus scrape annotations included).
//!
//! Objects are named `<command>-<controller>` (`anvil-demo` for `anvil manifests demo`) and
//! labelled `app.kubernetes.io/name: <command>`.

use std::collections::{BTreeMap, BTreeSet};

use anvil_shim::rbac::{lease_permissions, policy_rules, runtime_permissions};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Namespace,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SecurityContext, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::Cli;
use crate::controller::Runnable;

/// The image the `anvil` binary's Deployment runs unless `--image` says otherwise (built from
/// the repository's `Dockerfile`); other commands set theirs with [`Cli::image`].
pub const DEFAULT_IMAGE: &str = "ghcr.io/anvil-rs/anvil:latest";

/// Arguments of `anvil manifests`.
#[derive(clap::Args, Debug, Clone)]
pub struct ManifestsArgs {
    /// The controller to deploy (`list` names them; broken variants cannot be deployed).
    pub controller: String,
    /// Namespace of the operator's ServiceAccount and Deployment.
    #[arg(long, default_value = "anvil-system")]
    pub namespace: String,
    /// Watch only this namespace: a Role and RoleBinding there instead of a ClusterRole and
    /// ClusterRoleBinding (the Deployment gets `--namespace`).
    #[arg(long)]
    pub watch_namespace: Option<String>,
    /// The operator image, whose entrypoint is this command (default: the command's image,
    /// e.g. `ghcr.io/anvil-rs/anvil:latest` built from the repository's Dockerfile for `anvil`).
    #[arg(long)]
    pub image: Option<String>,
    /// Port of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, default_value_t = 8080)]
    pub metrics_port: u16,
    /// Leave the CRDs out (e.g. when they are installed separately).
    #[arg(long)]
    pub no_crd: bool,
    /// Replicas of the Deployment; they elect a leader on a Lease, only the leader reconciles.
    #[arg(long, default_value_t = 2)]
    pub replicas: i32,
    /// One replica without leader election (and without the Lease's Role).
    #[arg(long, conflicts_with = "replicas")]
    pub no_leader_election: bool,
}

/// The objects of a deployment, before printing.
pub struct Manifests {
    /// The CRDs (none with `--no-crd`).
    pub crds: Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>,
    /// The operator's namespace.
    pub namespace: Namespace,
    /// The ServiceAccount the controller runs as.
    pub service_account: ServiceAccount,
    /// The controller's rules: a ClusterRole, or a Role with `--watch-namespace`.
    pub role: RoleKind,
    /// The Role and RoleBinding of the leader-election Lease, in the operator's namespace.
    pub lease: Option<(Role, RoleBinding)>,
    /// The Deployment.
    pub deployment: Deployment,
}

/// A ClusterRole and its ClusterRoleBinding, or a Role and its RoleBinding.
pub enum RoleKind {
    /// Cluster-wide (every namespace watched).
    Cluster(ClusterRole, ClusterRoleBinding),
    /// One namespace.
    Namespaced(Role, RoleBinding),
}

impl RoleKind {
    /// The rules.
    pub fn rules(&self) -> &[PolicyRule] {
        match self {
            RoleKind::Cluster(r, _) => r.rules.as_deref().unwrap_or_default(),
            RoleKind::Namespaced(r, _) => r.rules.as_deref().unwrap_or_default(),
        }
    }
}

/// Who the objects belong to: the command's name and the deployed controller.
#[derive(Clone, Copy)]
struct Owner<'a> {
    command: &'a str,
    controller: &'a str,
}

fn labels(o: Owner) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name".to_string(), o.command.to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            format!("{}-{}", o.command, o.controller),
        ),
    ]
    .into()
}

fn meta(name: &str, namespace: Option<&str>, o: Owner) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels(o)),
        ..Default::default()
    }
}

/// The RBAC rules of `r`: its declared request permissions and the runtime's.
pub fn rules(r: &Runnable) -> Vec<PolicyRule> {
    let mut perms: BTreeSet<_> = r.config.permissions.clone();
    perms.extend(runtime_permissions(&r.cr, &r.config));
    policy_rules(&perms)
}

/// Builds the manifests of `args.controller`, a controller of `cli`; `Err` says why a
/// controller cannot be deployed (unknown, or not runnable).
pub fn build(cli: &Cli, args: &ManifestsArgs) -> Result<Manifests, String> {
    let controller = cli.find(&args.controller).ok_or_else(|| {
        format!(
            "unknown controller `{}`; `{} manifests` accepts {}",
            args.controller,
            cli.name(),
            cli.runnable_names()
        )
    })?;
    let r = controller.runnable().map_err(|e| {
        format!(
            "{e}; `{} manifests` accepts {}",
            cli.name(),
            cli.runnable_names()
        )
    })?;
    let c = Owner {
        command: cli.name(),
        controller: r.name,
    };
    let name = format!("{}-{}", c.command, c.controller);
    let image = args.image.clone().unwrap_or_else(|| cli.default_image());
    let ns = args.namespace.as_str();
    let rules = rules(&r);
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: name.clone(),
        namespace: Some(ns.to_string()),
        api_group: None,
    };
    let role = match &args.watch_namespace {
        None => RoleKind::Cluster(
            ClusterRole {
                metadata: meta(&name, None, c),
                rules: Some(rules),
                aggregation_rule: None,
            },
            ClusterRoleBinding {
                metadata: meta(&name, None, c),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: name.clone(),
                },
                subjects: Some(vec![subject]),
            },
        ),
        Some(watch) => RoleKind::Namespaced(
            Role {
                metadata: meta(&name, Some(watch), c),
                rules: Some(rules),
            },
            RoleBinding {
                metadata: meta(&name, Some(watch), c),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: name.clone(),
                },
                subjects: Some(vec![subject]),
            },
        ),
    };
    let leader_election = !args.no_leader_election;
    let mut run_args = vec!["run".to_string(), c.controller.to_string()];
    if let Some(watch) = &args.watch_namespace {
        run_args.extend(["--namespace".to_string(), watch.clone()]);
    }
    if leader_election {
        run_args.push("--leader-election".to_string());
    }
    run_args.extend(["--metrics-port".to_string(), args.metrics_port.to_string()]);
    let probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("metrics".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        ..Default::default()
    };
    let quantity = |s: &str| Quantity(s.to_string());
    let mut pod_meta = meta(&name, None, c);
    pod_meta.name = None;
    pod_meta.annotations = Some(
        [
            ("prometheus.io/scrape".to_string(), "true".to_string()),
            (
                "prometheus.io/port".to_string(),
                args.metrics_port.to_string(),
            ),
            ("prometheus.io/path".to_string(), "/metrics".to_string()),
        ]
        .into(),
    );
    let deployment = Deployment {
        metadata: meta(&name, Some(ns), c),
        spec: Some(DeploymentSpec {
            replicas: Some(if leader_election { args.replicas } else { 1 }),
            selector: LabelSelector {
                match_labels: Some(labels(c)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(pod_meta),
                spec: Some(PodSpec {
                    service_account_name: Some(name.clone()),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        ..Default::default()
                    }),
                    containers: vec![Container {
                        name: "controller".into(),
                        image: Some(image),
                        args: Some(run_args),
                        env: Some(vec![
                            EnvVar {
                                name: "RUST_LOG".into(),
                                value: Some("info".into()),
                                value_from: None,
                            },
                            field_env("POD_NAME", "metadata.name"),
                            field_env("POD_NAMESPACE", "metadata.namespace"),
                        ]),
                        ports: Some(vec![ContainerPort {
                            name: Some("metrics".into()),
                            container_port: i32::from(args.metrics_port),
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        }]),
                        liveness_probe: Some(probe("/healthz", 10)),
                        readiness_probe: Some(probe("/readyz", 5)),
                        resources: Some(ResourceRequirements {
                            requests: Some(
                                [
                                    ("cpu".to_string(), quantity("50m")),
                                    ("memory".to_string(), quantity("64Mi")),
                                ]
                                .into(),
                            ),
                            limits: Some([("memory".to_string(), quantity("256Mi"))].into()),
                            ..Default::default()
                        }),
                        security_context: Some(SecurityContext {
                            allow_privilege_escalation: Some(false),
                            read_only_root_filesystem: Some(true),
                            capabilities: Some(Capabilities {
                                drop: Some(vec!["ALL".into()]),
                                add: None,
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    };
    Ok(Manifests {
        crds: if args.no_crd {
            Vec::new()
        } else {
            r.crds.clone()
        },
        namespace: Namespace {
            metadata: meta(ns, None, c),
            ..Default::default()
        },
        service_account: ServiceAccount {
            metadata: meta(&name, Some(ns), c),
            ..Default::default()
        },
        role,
        lease: leader_election.then(|| {
            let lease_name = format!("{name}-leader-election");
            (
                Role {
                    metadata: meta(&lease_name, Some(ns), c),
                    rules: Some(lease_rules()),
                },
                RoleBinding {
                    metadata: meta(&lease_name, Some(ns), c),
                    role_ref: RoleRef {
                        api_group: "rbac.authorization.k8s.io".into(),
                        kind: "Role".into(),
                        name: lease_name.clone(),
                    },
                    subjects: Some(vec![Subject {
                        kind: "ServiceAccount".into(),
                        name: name.clone(),
                        namespace: Some(ns.to_string()),
                        api_group: None,
                    }]),
                },
            )
        }),
        deployment,
    })
}

/// An environment variable from the downward API.
fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.into(),
                api_version: None,
            }),
            ..Default::default()
        }),
    }
}

fn doc(out: &mut String, obj: &impl Serialize) {
    out.push_str("---\n");
    out.push_str(&serde_yaml::to_string(obj).expect("Kubernetes objects serialise"));
}

impl Manifests {
    /// The objects as one YAML stream (documents separated by `---`), in apply order.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for crd in &self.crds {
            doc(&mut out, crd);
        }
        doc(&mut out, &self.namespace);
        doc(&mut out, &self.service_account);
        match &self.role {
            RoleKind::Cluster(r, b) => {
                doc(&mut out, r);
                doc(&mut out, b);
            }
            RoleKind::Namespaced(r, b) => {
                doc(&mut out, r);
                doc(&mut out, b);
            }
        }
        if let Some((r, b)) = &self.lease {
            doc(&mut out, r);
            doc(&mut out, b);
        }
        doc(&mut out, &self.deployment);
        out
    }
}

/// `manifests`: prints the YAML; exit code 2 for a controller that cannot be deployed.
pub fn run(cli: &Cli, args: &ManifestsArgs) -> i32 {
    match build(cli, args) {
        Ok(m) => {
            print!("{}", m.to_yaml());
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// The Lease rules of leader election, for a Role in the operator's namespace.
pub fn lease_rules() -> Vec<PolicyRule> {
    policy_rules(&lease_permissions())
}

#[cfg(all(test, feature = "examples"))]
mod tests {
    use super::*;

    fn build(args: &ManifestsArgs) -> Option<Manifests> {
        super::build(&crate::registry::cli(), args).ok()
    }

    fn args(controller: &str) -> ManifestsArgs {
        ManifestsArgs {
            controller: controller.into(),
            namespace: "anvil-system".into(),
            watch_namespace: None,
            image: None,
            metrics_port: 8080,
            no_crd: false,
            replicas: 2,
            no_leader_election: false,
        }
    }

    fn has(rules: &[PolicyRule], group: &str, resource: &str, verbs: &[&str]) -> bool {
        rules.iter().any(|r| {
            r.api_groups.as_deref() == Some(&[group.to_string()][..])
                && r.resources.as_deref() == Some(&[resource.to_string()][..])
                && r.verbs == verbs.iter().map(|v| v.to_string()).collect::<Vec<_>>()
        })
    }

    #[test]
    fn demo_rules_are_exactly_its_requests_and_the_runtime() {
        let m = build(&args("demo")).unwrap();
        let rules = m.role.rules();
        assert!(has(
            rules,
            "",
            "configmaps",
            &["create", "get", "list", "update", "watch"]
        ));
        assert!(has(
            rules,
            "apps",
            "statefulsets",
            &["create", "get", "list", "update", "watch"]
        ));
        assert!(has(
            rules,
            "demo.anvil.dev",
            "demoapps",
            &["get", "list", "watch"]
        ));
        assert!(has(rules, "demo.anvil.dev", "demoapps/status", &["update"]));
        assert!(has(rules, "events.k8s.io", "events", &["create", "patch"]));
        assert_eq!(rules.len(), 5, "{rules:#?}");
        assert!(
            rules
                .iter()
                .all(|r| !r.verbs.iter().any(|v| v == "*" || v == "delete"))
        );
    }

    #[test]
    fn the_lease_role_allows_exactly_what_leader_election_does() {
        let m = build(&args("demo")).unwrap();
        let (role, binding) = m.lease.unwrap();
        assert_eq!(role.metadata.namespace.as_deref(), Some("anvil-system"));
        let rules = role.rules.unwrap();
        assert!(has(
            &rules,
            "coordination.k8s.io",
            "leases",
            &["create", "get", "patch"]
        ));
        assert_eq!(rules.len(), 1);
        assert_eq!(binding.subjects.unwrap()[0].name, "anvil-demo");
        assert_eq!(m.deployment.spec.unwrap().replicas, Some(2));
    }

    #[test]
    fn a_watch_namespace_gives_a_role_and_the_run_argument() {
        let mut a = args("zookeeper");
        a.watch_namespace = Some("apps".into());
        let m = build(&a).unwrap();
        let RoleKind::Namespaced(role, binding) = &m.role else {
            panic!("a Role expected");
        };
        assert_eq!(role.metadata.namespace.as_deref(), Some("apps"));
        assert_eq!(binding.role_ref.kind, "Role");
        let c = &m
            .deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0];
        assert_eq!(
            c.args.as_ref().unwrap(),
            &[
                "run",
                "zookeeper",
                "--namespace",
                "apps",
                "--leader-election",
                "--metrics-port",
                "8080"
            ]
        );
    }

    #[test]
    fn the_yaml_parses_back_into_documents() {
        let yaml = build(&args("rabbitmq")).unwrap().to_yaml();
        let kinds: Vec<String> = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| {
                let v = serde_yaml::Value::deserialize(d).unwrap();
                v["kind"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "CustomResourceDefinition",
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Deployment"
            ]
        );
        assert!(build(&args("demo-stale-update")).is_none());
        let mut single = args("rabbitmq");
        single.no_leader_election = true;
        let m = build(&single).unwrap();
        assert!(m.lease.is_none());
        assert_eq!(m.deployment.spec.unwrap().replicas, Some(1));
    }

    use serde::Deserialize;
}
