//! Reads HRA objects from YAML: one document, a `List`, or a `---` stream, as
//! `kubectl get hra -o yaml` prints them.

use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// Errors reading a seed file.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A document is not valid YAML or not an HRA.
    #[error("{0}")]
    Invalid(String),
}

/// Reads every HRA object in the YAML file at `path`.
pub fn read_file(path: &Path) -> Result<Vec<Value>, SeedError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeedError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text).map_err(|e| SeedError::Invalid(format!("{}: {e}", path.display())))
}

/// Parses HRA objects out of YAML text.
pub fn parse(text: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for (index, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| format!("document {index}: {e}"))?;
        collect(value, index, &mut objects)?;
    }
    Ok(objects)
}

fn collect(value: Value, doc: usize, out: &mut Vec<Value>) -> Result<(), String> {
    match value {
        Value::Null => Ok(()),
        Value::Object(mut map) => {
            let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind == "List" || kind.ends_with("List") {
                let items = match map.remove("items") {
                    Some(Value::Array(items)) => items,
                    Some(Value::Null) | None => vec![],
                    Some(_) => return Err(format!("document {doc}: `items` must be a list")),
                };
                for item in items {
                    collect(item, doc, out)?;
                }
                return Ok(());
            }
            if !kind.is_empty() && kind != crate::model::KIND {
                return Err(format!(
                    "document {doc}: kind {kind:?} is not {}",
                    crate::model::KIND
                ));
            }
            let has_name = map
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !has_name {
                return Err(format!("document {doc}: metadata.name is required"));
            }
            out.push(Value::Object(map));
            Ok(())
        }
        _ => Err(format!("document {doc}: expected an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_single_documents_streams_and_lists() {
        let one = "kind: HorizontalRunnerAutoscaler\nmetadata: {name: a, namespace: x}\n";
        assert_eq!(parse(one).unwrap().len(), 1);
        let stream = format!("---\n{one}---\n{one}\n---\n");
        assert_eq!(parse(&stream).unwrap().len(), 2);
        let list =
            "apiVersion: v1\nkind: List\nitems:\n- metadata: {name: a}\n- metadata: {name: b}\n";
        let objs = parse(list).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1]["metadata"]["name"], "b");
    }

    #[test]
    fn rejects_other_kinds_and_nameless_objects() {
        assert!(
            parse("kind: Pod\nmetadata: {name: a}\n")
                .unwrap_err()
                .contains("Pod")
        );
        assert!(
            parse("kind: HorizontalRunnerAutoscaler\nmetadata: {}\n")
                .unwrap_err()
                .contains("metadata.name")
        );
        assert!(parse("- 1\n- 2\n").is_err());
    }

    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hras.yaml");
        let objs = read_file(&path).unwrap();
        assert!(objs.len() >= 3);
        for obj in &objs {
            crate::model::Hra::from_object(obj).unwrap();
        }
    }
}
