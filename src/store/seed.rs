//! Reads HRA objects (and the RunnerDeployments and RunnerSets they scale) from YAML: one
//! document, a `List`, or a `---` stream, as `kubectl get -o yaml` prints them.

use super::runners::{RUNNER_DEPLOYMENT, RUNNER_SET};
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
    /// A document is not valid YAML.
    #[error("document {doc}: {source}")]
    Yaml {
        /// 0-based index of the document in the stream.
        doc: usize,
        /// The parser's error.
        source: serde_norway::Error,
    },
    /// A document is not an HRA object.
    #[error("document {doc}: {message}")]
    Object {
        /// 0-based index of the document in the stream.
        doc: usize,
        /// What is wrong with it.
        message: String,
    },
    /// An error in a named file.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The error in it.
        #[source]
        source: Box<SeedError>,
    },
}

/// Reads every HRA object in the YAML file at `path`.
pub fn read_file(path: &Path) -> Result<Vec<Value>, SeedError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeedError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text).map_err(|e| SeedError::File {
        path: path.display().to_string(),
        source: Box::new(e),
    })
}

/// Parses HRA objects out of YAML text.
pub fn parse(text: &str) -> Result<Vec<Value>, SeedError> {
    let mut objects = Vec::new();
    for (doc, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value =
            Value::deserialize(document).map_err(|source| SeedError::Yaml { doc, source })?;
        collect(value, doc, &mut objects)?;
    }
    Ok(objects)
}

fn collect(value: Value, doc: usize, out: &mut Vec<Value>) -> Result<(), SeedError> {
    let invalid = |message: String| SeedError::Object { doc, message };
    match value {
        Value::Null => Ok(()),
        Value::Object(mut map) => {
            let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind == "List" || kind.ends_with("List") {
                let items = match map.remove("items") {
                    Some(Value::Array(items)) => items,
                    Some(Value::Null) | None => vec![],
                    Some(_) => return Err(invalid("`items` must be a list".into())),
                };
                for item in items {
                    collect(item, doc, out)?;
                }
                return Ok(());
            }
            let known = [super::resource::KIND, RUNNER_DEPLOYMENT, RUNNER_SET];
            if !kind.is_empty() && !known.contains(&kind) {
                return Err(invalid(format!(
                    "kind {kind:?} is not one of {}",
                    known.join(", ")
                )));
            }
            let has_name = map
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !has_name {
                return Err(invalid("metadata.name is required".into()));
            }
            out.push(Value::Object(map));
            Ok(())
        }
        _ => Err(invalid("expected an object".into())),
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
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert!(err("kind: Pod\nmetadata: {name: a}\n").contains("Pod"));
        assert_eq!(
            parse("kind: RunnerSet\nmetadata: {name: a}\n")
                .unwrap()
                .len(),
            1
        );
        assert!(err("kind: HorizontalRunnerAutoscaler\nmetadata: {}\n").contains("metadata.name"));
        assert!(parse("- 1\n- 2\n").is_err());
    }

    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hras.yaml");
        let objs = read_file(&path).unwrap();
        assert!(objs.len() >= 3);
        let mut kinds = Vec::new();
        for obj in &objs {
            let kind = obj["kind"].as_str().unwrap_or_default();
            match kind {
                RUNNER_DEPLOYMENT | RUNNER_SET => {}
                _ => drop(crate::store::resource::parse_hra(obj).unwrap()),
            }
            kinds.push(kind.to_owned());
        }
        for kind in [super::super::resource::KIND, RUNNER_DEPLOYMENT, RUNNER_SET] {
            assert!(kinds.iter().any(|k| k == kind), "the example has a {kind}");
        }
        crate::store::MemoryStore::with_objects(objs).unwrap();
    }
}
