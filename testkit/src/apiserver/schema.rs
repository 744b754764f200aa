//! What the test API server knows of each custom resource from its CRD, as a real API server
//! does: the structural schema that unknown fields are pruned against on every write, and
//! whether `status` is a subresource. The CRDs are actions-runner-controller's own, kept as
//! published in `testkit/crds/`.

use serde::Deserialize;
use serde_json::Value;
use std::{collections::HashMap, sync::OnceLock};

const CRDS: [(&str, &str); 3] = [
    (
        "horizontalrunnerautoscalers",
        include_str!("../../crds/actions.summerwind.dev_horizontalrunnerautoscalers.yaml"),
    ),
    (
        "runnerdeployments",
        include_str!("../../crds/actions.summerwind.dev_runnerdeployments.yaml"),
    ),
    (
        "runnersets",
        include_str!("../../crds/actions.summerwind.dev_runnersets.yaml"),
    ),
];

/// One served version of a CRD.
pub struct Crd {
    /// `openAPIV3Schema`.
    schema: Value,
    /// `subresources.status` is declared.
    pub status_subresource: bool,
}

/// The CRD of `plural` (the version we serve), if it is one of ours.
pub fn crd(plural: &str) -> Option<&'static Crd> {
    static LOADED: OnceLock<HashMap<&'static str, Crd>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            CRDS.iter()
                .filter_map(|(plural, yaml)| {
                    let doc = serde_norway::Deserializer::from_str(yaml)
                        .filter_map(|d| Value::deserialize(d).ok())
                        .find(|v| v["kind"] == "CustomResourceDefinition")?;
                    let version = doc["spec"]["versions"]
                        .as_array()?
                        .iter()
                        .find(|v| v["storage"] == true)?
                        .clone();
                    Some((
                        *plural,
                        Crd {
                            schema: version["schema"]["openAPIV3Schema"].clone(),
                            status_subresource: version["subresources"].get("status").is_some(),
                        },
                    ))
                })
                .collect()
        })
        .get(plural)
}

impl Crd {
    /// Drops every field the schema does not know (`apiVersion`, `kind` and `metadata` of
    /// the object itself are the server's, never pruned).
    pub fn prune(&self, object: &mut Value) {
        let Some(map) = object.as_object_mut() else {
            return;
        };
        let properties = self.schema.get("properties").and_then(Value::as_object);
        map.retain(|k, _| {
            matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                || properties.is_some_and(|p| p.contains_key(k))
        });
        for (k, v) in map.iter_mut() {
            if let Some(schema) = properties.and_then(|p| p.get(k))
                && k != "metadata"
            {
                prune(schema, v);
            }
        }
    }
}

/// Structural pruning of `value` by `schema`: unknown object fields go, unless the schema
/// preserves them (`x-kubernetes-preserve-unknown-fields`), maps keep every key
/// (`additionalProperties`), arrays prune each item.
fn prune(schema: &Value, value: &mut Value) {
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    match value {
        Value::Object(map) => {
            if schema["x-kubernetes-embedded-resource"] == true {
                // An embedded object keeps its type and metadata as given.
            }
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                let embedded = schema["x-kubernetes-embedded-resource"] == true;
                if !preserve {
                    map.retain(|k, _| {
                        properties.contains_key(k)
                            || (embedded
                                && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
                    });
                }
                for (k, v) in map.iter_mut() {
                    if let Some(schema) = properties.get(k) {
                        prune(schema, v);
                    }
                }
            } else if let Some(items) = schema.get("additionalProperties").filter(|a| a.is_object())
            {
                for v in map.values_mut() {
                    prune(items, v);
                }
            } else if !preserve && schema.get("additionalProperties") != Some(&Value::Bool(true)) {
                map.clear();
            }
        }
        Value::Array(items) => {
            if let Some(schema) = schema.get("items") {
                for v in items {
                    prune(schema, v);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_hra_crd_prunes_unknown_fields_and_declares_status_a_subresource() {
        let crd = crd("horizontalrunnerautoscalers").unwrap();
        assert!(crd.status_subresource);
        let mut object = json!({
            "apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "HorizontalRunnerAutoscaler",
            "metadata": {"name": "a", "whatever": 1},
            "spec": {"minReplicas": 1, "unknown": true,
                "capacityReservations": [{"name": "j", "replicas": 1, "bogus": "x"}],
                "scaleUpTriggers": [{"githubEvent": {"workflowJob": {}}, "duration": "30m"}]},
            "extra": 1,
        });
        crd.prune(&mut object);
        assert_eq!(
            object,
            json!({
                "apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "HorizontalRunnerAutoscaler",
                "metadata": {"name": "a", "whatever": 1},
                "spec": {"minReplicas": 1,
                    "capacityReservations": [{"name": "j", "replicas": 1}],
                    "scaleUpTriggers": [{"githubEvent": {"workflowJob": {}}, "duration": "30m"}]},
            })
        );
    }

    #[test]
    fn runner_crds_keep_the_fields_routing_reads() {
        let rd = crd("runnerdeployments").unwrap();
        let mut object = json!({"metadata": {"name": "linux"}, "spec": {"template": {"spec": {
            "organization": "octo", "group": "g", "labels": ["linux"], "nonsense": 1}}}});
        rd.prune(&mut object);
        assert_eq!(
            object["spec"]["template"]["spec"],
            json!({"organization": "octo", "group": "g", "labels": ["linux"]})
        );
        let rs = crd("runnersets").unwrap();
        let mut object = json!({"metadata": {"name": "gpu"}, "spec": {
            "enterprise": "e", "labels": ["gpu"], "nonsense": 1}});
        rs.prune(&mut object);
        assert_eq!(
            object["spec"],
            json!({"enterprise": "e", "labels": ["gpu"]})
        );
    }
}
