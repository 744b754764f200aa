//! The manifests in `deploy/` (rendered from the Helm chart) are what the README promises:
//! least-privilege RBAC, three hardened replicas with a gRPC readiness probe, flags the binary
//! accepts, a CRD typed like the real one. `tests/chart/` checks the chart itself and that
//! `deploy/` is what it renders.

use batch_scaler::config::Args;
use clap::Parser;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

fn docs(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn rbac_grants_only_get_list_watch_patch_on_hras_and_reads_runners() {
    let rbac = docs("batch-scaler.yaml");
    let rules = kind(&rbac, "ClusterRole")["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    // Leases only in the service's own namespace.
    let members = kind(&rbac, "Role");
    assert_eq!(members["metadata"]["namespace"], "batch-scaler");
    assert_eq!(
        members["rules"][0],
        serde_json::json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update"]})
    );
    assert_eq!(
        rules[1],
        serde_json::json!({"apiGroups": ["actions.summerwind.dev"],
            "resources": ["runnerdeployments", "runnersets"], "verbs": ["get", "list", "watch"]})
    );
    assert_eq!(
        rules[0]["apiGroups"],
        serde_json::json!(["actions.summerwind.dev"])
    );
    assert_eq!(
        rules[0]["resources"],
        serde_json::json!(["horizontalrunnerautoscalers"])
    );
    assert_eq!(
        rules[0]["verbs"],
        serde_json::json!(["get", "list", "watch", "patch"])
    );
    let binding = kind(&rbac, "ClusterRoleBinding");
    assert_eq!(
        binding["subjects"][0]["name"],
        kind(&rbac, "ServiceAccount")["metadata"]["name"]
    );
}

#[test]
fn deployment_is_three_hardened_replicas_sharing_hras_out_with_valid_flags() {
    let all = docs("batch-scaler.yaml");
    let deployment = kind(&all, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["serviceAccountName"], "batch-scaler");
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert!(
        c["resources"]["requests"]["cpu"].is_string()
            && c["resources"]["requests"]["memory"].is_string()
    );
    // Readiness follows gRPC health (NOT_SERVING until every cache has listed); liveness
    // must not: a long first list is no reason to restart.
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(
        c["ports"][1],
        serde_json::json!({"name": "metrics", "containerPort": 9090})
    );
    assert_eq!(c["readinessProbe"]["grpc"]["port"], 50051);
    let mut argv = vec!["batch-scaler".to_owned()];
    argv.extend(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned()),
    );
    let args = Args::try_parse_from(&argv).unwrap();
    assert_eq!(args.listen.to_string(), "0.0.0.0:50051");
    // Scale-out: the downward API tells each replica who and where it is.
    let env: Vec<(&str, &str)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        env,
        [
            ("POD_NAME", "metadata.name"),
            ("POD_IP", "status.podIP"),
            ("POD_NAMESPACE", "metadata.namespace")
        ]
    );
    assert_eq!(args.peers, batch_scaler::config::PeersMode::On);
    let pdb = kind(&all, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(args.backend, batch_scaler::config::Backend::Kubernetes);
    // The drain must fit in the pod's termination grace period.
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(args.shutdown_grace.as_secs() + 5 <= grace);
}

#[test]
fn kustomize_never_applies_a_crd_over_actions_runner_controllers() {
    let kustomization = &docs("kustomization.yaml")[0];
    let resources: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(!resources.contains(&"crd.yaml"), "{resources:?}");
    for file in resources {
        for doc in docs(file) {
            assert_ne!(doc["kind"], "CustomResourceDefinition", "{file}");
        }
    }
}

#[test]
fn the_image_build_context_leaves_build_output_and_node_modules_out() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".dockerignore");
    let ignored = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = ignored.lines().map(str::trim).collect();
    for needed in ["target/", "web/node_modules/", ".git/"] {
        assert!(lines.contains(&needed), "{needed} not in .dockerignore");
    }
}

#[test]
fn the_crd_types_capacity_reservations_like_the_real_one() {
    let crd = &docs("crd.yaml")[0];
    assert_eq!(crd["spec"]["group"], "actions.summerwind.dev");
    assert_eq!(
        crd["spec"]["names"]["plural"],
        "horizontalrunnerautoscalers"
    );
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    let items = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["capacityReservations"]
        ["items"]["properties"];
    assert_eq!(items["name"]["type"], "string");
    assert_eq!(items["effectiveTime"]["format"], "date-time");
    assert_eq!(items["expirationTime"]["format"], "date-time");
    assert_eq!(items["replicas"]["type"], "integer");
}

#[test]
fn the_service_exposes_grpc_and_metrics() {
    let svc = kind(&docs("batch-scaler.yaml"), "Service").clone();
    let ports: Vec<u64> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [50051, 9090]);
}
