//! Helpers for the `anvil` command.

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::ShimError;

/// The CRD as YAML, ready for `kubectl apply -f -` (a document starting with `---`).
pub fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    let yaml = serde_yaml::to_string(crd).expect("a CRD always serialises");
    format!("---\n{yaml}")
}

/// A client and the server URL it talks to (for error messages).
#[derive(Clone)]
pub struct Cluster {
    /// The client.
    pub client: Client,
    /// The API server URL.
    pub url: String,
}

/// Connects using the kubeconfig at `path`, or the usual places (`$KUBECONFIG`,
/// `~/.kube/config`, in-cluster) when `None`. Does not contact the server yet.
pub async fn connect(path: Option<&Path>) -> Result<Cluster, ShimError> {
    let config = match path {
        Some(p) => {
            let kc = Kubeconfig::read_from(p)
                .map_err(|e| ShimError::Config(format!("cannot read {}: {e}", p.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| ShimError::Config(format!("{}: {e}", p.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ShimError::Config(e.to_string()))?,
    };
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| ShimError::Config(e.to_string()))?;
    Ok(Cluster { client, url })
}

/// Checks that the API server at `url` answers (`/version`) and that the CRD `crd_name`
/// (`<plural>.<group>`) is installed, with errors a user can act on:
/// `cannot reach the API server at URL: ...` and
/// ``CRD x is not installed; run `anvil crd <controller> | kubectl apply -f -` ``.
pub async fn check_cluster(client: &Client, url: &str, crd_name: &str) -> Result<(), ShimError> {
    client
        .apiserver_version()
        .await
        .map_err(|e| ShimError::Unreachable {
            url: url.to_string(),
            message: e.to_string(),
        })?;
    // Discovery first: every authenticated user may read it (the `system:discovery`
    // ClusterRole), so a controller running under its least-privilege ServiceAccount needs no
    // permission on CustomResourceDefinitions.
    if served(client, crd_name).await {
        return Ok(());
    }
    // Not (yet) in discovery: ask for the CRD itself (discovery can lag a new CRD briefly).
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.get_opt(crd_name).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ShimError::CrdMissing {
            crd: crd_name.to_string(),
        }),
        Err(kube::Error::Api(s)) if s.code == 403 => Err(ShimError::CrdMissing {
            crd: crd_name.to_string(),
        }),
        Err(e) => Err(ShimError::Api {
            context: format!("reading CRD {crd_name}"),
            error: (&e).into(),
        }),
    }
}

/// Whether API discovery lists the resource `<plural>.<group>`.
async fn served(client: &Client, crd_name: &str) -> bool {
    let Some((plural, group)) = crd_name.split_once('.') else {
        return false;
    };
    let Ok(groups) = client.list_api_groups().await else {
        return false;
    };
    for g in groups.groups.iter().filter(|g| g.name == group) {
        for v in &g.versions {
            if let Ok(list) = client.list_api_group_resources(&v.group_version).await
                && list.resources.iter().any(|r| r.name == plural)
            {
                return true;
            }
        }
    }
    false
}
