//! The Kubernetes API a test talks to: our fault-injecting [`ApiServer`] by default, or an
//! existing cluster when `USE_EXISTING_CLUSTER=true` and `KUBECONFIG` are set (the convention
//! of controller-runtime's envtest). Either way each test gets a fresh namespace with a random
//! suffix; on an existing cluster the HRA CRD is installed if missing, and nothing relies on
//! namespace deletion or garbage collection (the cluster may have no controller-manager).

use crate::apiserver::{ApiServer, CRD_NAME, plural_of};
use batch_scaler::store::{
    resource::{GROUP, PLURAL, VERSION},
    runners::{RUNNER_DEPLOYMENT, RUNNER_DEPLOYMENTS, RUNNER_SET, RUNNER_SETS},
};
use serde_json::{Value, json};
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// The CRD installed on an existing cluster that lacks it.
const CRD_YAML: &str = include_str!("../../deploy/crd.yaml");

/// True when the tests should run against an existing cluster.
pub fn use_existing_cluster() -> bool {
    std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A Kubernetes API and a fresh namespace in it.
pub struct TestCluster {
    /// The namespace this test owns.
    pub namespace: String,
    client: kube::Client,
    fake: Option<ApiServer>,
}

/// Skips the rest of a test, with one line saying why, unless it runs on the fake API server;
/// evaluates to the fake.
#[macro_export]
macro_rules! fake_or_skip {
    ($cluster:expr, $why:literal) => {
        match $cluster.fake() {
            Some(fake) => fake,
            None => {
                eprintln!("skipped on an existing cluster: {}", $why);
                return;
            }
        }
    };
}

async fn request(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, kube::Error> {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let mut builder = http::Request::builder().method(method).uri(path);
    if method == "PATCH" {
        builder = builder.header("content-type", "application/merge-patch+json");
    } else {
        builder = builder.header("content-type", "application/json");
    }
    client
        .request::<Value>(builder.body(body).expect("a valid request"))
        .await
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

impl TestCluster {
    /// The fake API server, or the existing cluster; a fresh namespace either way.
    pub async fn start() -> Self {
        let namespace = format!("bs-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let (client, fake) = if use_existing_cluster() {
            let client = kube::Client::try_default()
                .await
                .expect("USE_EXISTING_CLUSTER=true needs a usable KUBECONFIG");
            (client, None)
        } else {
            let fake = ApiServer::start().await;
            (fake.client(), Some(fake))
        };
        let cluster = Self {
            namespace,
            client,
            fake,
        };
        cluster.install_crds().await;
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": cluster.namespace}});
        match request(&cluster.client, "POST", "/api/v1/namespaces", Some(&ns)).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 409) => {}
            Err(e) => panic!("creating namespace {}: {e}", cluster.namespace),
        }
        cluster
    }

    async fn install_crds(&self) {
        let hra: Value = serde_norway::from_str(CRD_YAML).expect("deploy/crd.yaml parses");
        self.install_crd(CRD_NAME, hra, PLURAL).await;
        for (kind, plural) in [
            (RUNNER_DEPLOYMENT, RUNNER_DEPLOYMENTS),
            (RUNNER_SET, RUNNER_SETS),
        ] {
            let name = format!("{plural}.{GROUP}");
            self.install_crd(&name, minimal_crd(kind, plural), plural)
                .await;
        }
    }

    /// Installs `crd` unless the cluster has a CRD of that name, and waits until it serves.
    async fn install_crd(&self, name: &str, crd: Value, plural: &str) {
        let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}");
        match request(&self.client, "GET", &path, None).await {
            Ok(_) => return,
            Err(e) if is_status(&e, 404) => {}
            Err(e) => panic!("looking up the CRD {name}: {e}"),
        }
        let create = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
        match request(&self.client, "POST", create, Some(&crd)).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 409) => {}
            Err(e) => panic!("installing the CRD {name}: {e}"),
        }
        // Established: the resource answers a list.
        let list = format!("/apis/{GROUP}/{VERSION}/{plural}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while request(&self.client, "GET", &list, None).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the CRD {name} never became established"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A kubeconfig file for a process of the service: `KUBECONFIG` itself on an existing
    /// cluster, else a file written for the fake.
    pub fn kubeconfig(&self) -> PathBuf {
        match &self.fake {
            None => std::env::var_os("KUBECONFIG")
                .map(PathBuf::from)
                .expect("KUBECONFIG is set"),
            Some(fake) => {
                let path = std::env::temp_dir().join(format!("bs-kubeconfig-{}", self.namespace));
                std::fs::write(&path, kubeconfig_for(fake.addr)).expect("writing a kubeconfig");
                path
            }
        }
    }

    /// A client of this API.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The fake API server, when not on an existing cluster.
    pub fn fake(&self) -> Option<&ApiServer> {
        self.fake.as_ref()
    }

    fn path(&self, name: Option<&str>) -> String {
        self.path_of(PLURAL, name)
    }

    fn path_of(&self, plural: &str, name: Option<&str>) -> String {
        let base = format!(
            "/apis/{GROUP}/{VERSION}/namespaces/{}/{plural}",
            self.namespace
        );
        match name {
            Some(name) => format!("{base}/{name}"),
            None => base,
        }
    }

    /// Creates an object (an HRA, RunnerDeployment or RunnerSet, by `kind`) in this test's
    /// namespace.
    pub async fn create(&self, mut object: Value) {
        object["metadata"]["namespace"] = json!(self.namespace);
        let plural = plural_of(&object);
        request(
            &self.client,
            "POST",
            &self.path_of(plural, None),
            Some(&object),
        )
        .await
        .expect("creating an object");
    }

    /// Replaces the `spec` fields given of an object (a merge patch, as `kubectl patch`).
    pub async fn patch_spec(&self, plural: &str, name: &str, spec: Value) {
        self.merge_patch(plural, name, json!({"spec": spec}))
            .await
            .expect("patching an object");
    }

    /// Sends a merge patch as another writer would, without a resourceVersion precondition.
    pub async fn merge_patch(
        &self,
        plural: &str,
        name: &str,
        patch: Value,
    ) -> Result<Value, kube::Error> {
        request(
            &self.client,
            "PATCH",
            &self.path_of(plural, Some(name)),
            Some(&patch),
        )
        .await
    }

    /// Writes an object's `status` through its status subresource, as its controller does
    /// (a write of the main resource cannot change it).
    pub async fn patch_status(&self, plural: &str, name: &str, status: Value) -> Value {
        let path = format!("{}/status", self.path_of(plural, Some(name)));
        request(
            &self.client,
            "PATCH",
            &path,
            Some(&json!({"status": status})),
        )
        .await
        .expect("patching the status subresource")
    }

    /// Deletes an object.
    pub async fn delete(&self, plural: &str, name: &str) {
        request(
            &self.client,
            "DELETE",
            &self.path_of(plural, Some(name)),
            None,
        )
        .await
        .expect("deleting an object");
    }

    /// The stored object, if it exists (read from the fake directly, so that the service's
    /// request counts stay its own).
    pub async fn object(&self, name: &str) -> Option<Value> {
        if let Some(fake) = &self.fake {
            return fake.object(&self.namespace, name);
        }
        match request(&self.client, "GET", &self.path(Some(name)), None).await {
            Ok(object) => Some(object),
            Err(e) if is_status(&e, 404) => None,
            Err(e) => panic!("reading HRA {name}: {e}"),
        }
    }

    /// How many reservations the stored object has.
    pub async fn reservations(&self, name: &str) -> usize {
        self.object(name)
            .await
            .and_then(|o| {
                o.pointer("/spec/capacityReservations")
                    .and_then(Value::as_array)
                    .map(Vec::len)
            })
            .unwrap_or(0)
    }

    /// Changes the object's spec as another writer would (a merge patch of the new spec,
    /// conditional on the version read).
    pub async fn edit(&self, name: &str, edit: impl FnOnce(&mut Value)) {
        let mut object = self.object(name).await.expect("the HRA exists");
        let version = object["metadata"]["resourceVersion"].clone();
        edit(&mut object);
        let patch = json!({"metadata": {"resourceVersion": version}, "spec": object["spec"]});
        request(&self.client, "PATCH", &self.path(Some(name)), Some(&patch))
            .await
            .expect("a foreign write");
    }
}

/// A kubeconfig whose current context talks plain HTTP to `addr`.
pub fn kubeconfig_for(addr: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"http://{addr}\"}}\n\
         users:\n- name: test\n  user: {{}}\ncontexts:\n- name: test\n  context: {{cluster: test, user: test}}\n\
         current-context: test\n"
    )
}

/// A CRD that accepts any spec: for clusters without actions-runner-controller's own.
fn minimal_crd(kind: &str, plural: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {
            "group": GROUP, "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(),
                "listKind": format!("{kind}List")},
            "versions": [{"name": VERSION, "served": true, "storage": true, "schema": {
                "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    })
}
