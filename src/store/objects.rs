//! Whole objects kept as JSON under one resourceVersion counter, changed the way the
//! Kubernetes API server changes them: JSON merge patches with a resourceVersion
//! precondition, immutable identity, a schema check before anything is stored. The memory
//! store keeps its HRAs here, and the test API server serves from the same code.

use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Namespace and name of a stored object.
pub type ObjectKey = (String, String);

/// Why a change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// No object under that key.
    #[error("not found")]
    NotFound,
    /// An object under that key exists already (create).
    #[error("already exists")]
    AlreadyExists,
    /// The patch's resourceVersion precondition does not hold.
    #[error(
        "the object has been modified: resourceVersion is {current}, the write was planned from {planned}"
    )]
    Conflict {
        /// The stored resourceVersion.
        current: String,
        /// The one the patch asked for.
        planned: String,
    },
    /// The result would not pass the schema check.
    #[error(transparent)]
    Invalid(#[from] SchemaViolation),
    /// The object has no `metadata.name` (or no `metadata` object).
    #[error("{0}")]
    Malformed(&'static str),
    /// The result would be larger than the storage takes (etcd's request limit).
    #[error("etcdserver: request is too large ({bytes} bytes, limit {limit})")]
    TooLarge {
        /// Size of the object as compact JSON.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

/// The result of a patch.
#[derive(Clone, Debug)]
pub struct Patched {
    /// The object as stored (or, on a dry run, as it would be).
    pub object: Value,
    /// False for a dry run or a patch that changed nothing (no new resourceVersion).
    pub changed: bool,
}

/// Why an object does not pass the schema check: the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaViolation(pub String);

/// A schema check run on every object before it is stored.
pub type Schema = fn(&Value) -> Result<(), SchemaViolation>;

/// Objects by namespace and name, with the resourceVersion counter they share.
#[derive(Debug)]
pub struct Objects {
    objects: BTreeMap<ObjectKey, Value>,
    revision: u64,
    schema: Schema,
    max_bytes: Option<usize>,
}

/// The key of an object: its `metadata.namespace` and `metadata.name`.
pub fn key_of(object: &Value) -> ObjectKey {
    let get = |f: &str| {
        object["metadata"][f]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    (get("namespace"), get("name"))
}

impl Objects {
    /// An empty map whose objects must pass `schema`.
    pub fn new(schema: Schema) -> Self {
        Self {
            objects: BTreeMap::new(),
            revision: 0,
            schema,
            max_bytes: None,
        }
    }

    /// Refuses patches whose result is larger than `limit` bytes of compact JSON, as etcd
    /// refuses requests over its limit (`None`: no limit).
    pub fn limit_bytes(&mut self, limit: Option<usize>) {
        self.max_bytes = limit;
    }

    /// The last resourceVersion handed out.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn stamp(&mut self, object: &mut Value) {
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
    }

    /// Adds an object that must not exist yet (POST); `metadata.namespace` defaults to
    /// `default`. Returns it as stored.
    pub fn create(&mut self, object: Value) -> Result<Value, ObjectError> {
        if self
            .objects
            .contains_key(&key_of(&with_namespace(object.clone())?))
        {
            return Err(ObjectError::AlreadyExists);
        }
        self.put(object)
    }

    /// Adds or replaces a whole object, giving it a new resourceVersion (and a uid if it
    /// has none). Returns it as stored.
    pub fn put(&mut self, object: Value) -> Result<Value, ObjectError> {
        let mut object = with_namespace(object)?;
        (self.schema)(&object)?;
        self.stamp(&mut object);
        if object["metadata"].get("uid").is_none() {
            object["metadata"]["uid"] = json!(format!("uid-{}", self.revision));
        }
        self.objects.insert(key_of(&object), object.clone());
        Ok(object)
    }

    /// The stored object.
    pub fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Every object, or those of one namespace, ordered by namespace then name.
    pub fn list<'a>(&'a self, namespace: Option<&'a str>) -> impl Iterator<Item = &'a Value> {
        self.objects
            .iter()
            .filter(move |((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, o)| o)
    }

    /// Removes an object, returning it.
    pub fn remove(&mut self, key: &ObjectKey) -> Option<Value> {
        self.objects.remove(key)
    }

    /// Changes an object in place as another writer would, with a new resourceVersion.
    pub fn modify(
        &mut self,
        key: &ObjectKey,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Value, ObjectError> {
        let mut object = self.objects.get(key).ok_or(ObjectError::NotFound)?.clone();
        edit(&mut object);
        self.replace(key, object)
    }

    /// Applies a JSON merge patch. A `metadata.resourceVersion` in the patch is a
    /// precondition; name, namespace and uid cannot change; the result must pass the schema.
    /// A dry run or a patch that changes nothing keeps the resourceVersion.
    pub fn patch(
        &mut self,
        key: &ObjectKey,
        patch: &Value,
        dry_run: bool,
    ) -> Result<Patched, ObjectError> {
        let current = self.objects.get(key).ok_or(ObjectError::NotFound)?;
        let current_rv = current["metadata"]["resourceVersion"].clone();
        let mut merged = current.clone();
        // RFC 7386: objects merge key by key, null removes a key, anything else replaces.
        json_patch::merge(&mut merged, patch);
        merged["metadata"]["resourceVersion"] = patch
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(current_rv);
        self.update(key, merged, dry_run)
    }

    /// Replaces a whole object (PUT). Its `metadata.resourceVersion`, when set, is a
    /// precondition; name, namespace and uid cannot change; the result must pass the schema.
    /// A dry run or an update that changes nothing keeps the resourceVersion.
    pub fn update(
        &mut self,
        key: &ObjectKey,
        mut next: Value,
        dry_run: bool,
    ) -> Result<Patched, ObjectError> {
        let current = self.objects.get(key).ok_or(ObjectError::NotFound)?;
        let current_rv = current["metadata"]["resourceVersion"].clone();
        if let Some(planned) = next
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            && Some(planned) != current_rv.as_str()
        {
            return Err(ObjectError::Conflict {
                current: current_rv.as_str().unwrap_or_default().to_owned(),
                planned: planned.to_owned(),
            });
        }
        if !next["metadata"].is_object() {
            next["metadata"] = json!({});
        }
        for immutable in ["name", "namespace", "uid"] {
            next["metadata"][immutable] = current["metadata"][immutable].clone();
        }
        next["metadata"]["resourceVersion"] = current_rv;
        (self.schema)(&next)?;
        if dry_run || next == *current {
            return Ok(Patched {
                object: next,
                changed: false,
            });
        }
        if let Some(limit) = self.max_bytes {
            let bytes = json_len(&next);
            if bytes > limit {
                return Err(ObjectError::TooLarge { bytes, limit });
            }
        }
        Ok(Patched {
            object: self.store_checked(key, next),
            changed: true,
        })
    }

    fn replace(&mut self, key: &ObjectKey, object: Value) -> Result<Value, ObjectError> {
        (self.schema)(&object)?;
        Ok(self.store_checked(key, object))
    }

    /// Stores an object that passed the schema, with a new resourceVersion.
    fn store_checked(&mut self, key: &ObjectKey, mut object: Value) -> Value {
        self.stamp(&mut object);
        self.objects.insert(key.clone(), object.clone());
        object
    }
}

/// Length of `value` as compact JSON (as `serde_json::to_vec` writes it), without building
/// the text: strings are measured with their escapes in one pass over their bytes.
pub fn json_len(value: &Value) -> usize {
    fn string_len(s: &str) -> usize {
        let escapes: usize = s
            .bytes()
            .map(|b| match b {
                b'"' | b'\\' | b'\n' | b'\t' | b'\r' | 0x08 | 0x0c => 1,
                0..0x20 => 5,
                _ => 0,
            })
            .sum();
        s.len() + 2 + escapes
    }
    match value {
        Value::Null => 4,
        Value::Bool(b) => 4 + usize::from(!b),
        Value::Number(n) => n.to_string().len(),
        Value::String(s) => string_len(s),
        Value::Array(items) => {
            2 + items.len().saturating_sub(1) + items.iter().map(json_len).sum::<usize>()
        }
        Value::Object(map) => {
            2 + map.len().saturating_sub(1)
                + map
                    .iter()
                    .map(|(k, v)| string_len(k) + 1 + json_len(v))
                    .sum::<usize>()
        }
    }
}

/// Checks that `metadata` is an object with a name, defaulting the namespace to `default`.
fn with_namespace(mut object: Value) -> Result<Value, ObjectError> {
    let meta = object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or(ObjectError::Malformed("metadata must be an object"))?;
    if !meta.get("name").is_some_and(Value::is_string) {
        return Err(ObjectError::Malformed("metadata.name is required"));
    }
    if !meta.get("namespace").is_some_and(Value::is_string) {
        meta.insert("namespace".into(), "default".into());
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_len_is_the_length_serde_json_writes() {
        let text = "quote \" back \\ nl \n tab \t cr \r bs \u{8} ff \u{c} nul \u{0} esc \u{1b} del \u{7f} é 😀";
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-12),
            json!(18_446_744_073_709_551_615u64),
            json!(1.5),
            json!(-0.000_125),
            json!(1e300),
            json!(text),
            json!([]),
            json!({}),
            json!([1, "a", null, [true, {}]]),
            json!({"metadata": {"annotations": {text: text}}, "spec": {"list": [{"x": 1.25}]}}),
        ];
        for v in values {
            assert_eq!(json_len(&v), serde_json::to_vec(&v).unwrap().len(), "{v}");
        }
    }

    fn any(_: &Value) -> Result<(), SchemaViolation> {
        Ok(())
    }

    fn key(name: &str) -> ObjectKey {
        ("default".into(), name.into())
    }

    #[test]
    fn patches_check_the_version_keep_identity_and_bump_only_on_change() {
        let mut objects = Objects::new(any);
        let stored = objects
            .put(json!({"metadata": {"name": "a"}, "spec": {"x": 1}}))
            .unwrap();
        assert_eq!(stored["metadata"]["resourceVersion"], "1");
        assert_eq!(stored["metadata"]["namespace"], "default");
        let stale = json!({"metadata": {"resourceVersion": "0"}, "spec": {"x": 2}});
        assert!(matches!(
            objects.patch(&key("a"), &stale, false),
            Err(ObjectError::Conflict { .. })
        ));
        let rename = json!({"metadata": {"resourceVersion": "1", "name": "b"}, "spec": {"x": 2}});
        let patched = objects.patch(&key("a"), &rename, false).unwrap();
        assert!(patched.changed);
        assert_eq!(patched.object["metadata"]["name"], "a");
        assert_eq!(patched.object["metadata"]["resourceVersion"], "2");
        let same = json!({"spec": {"x": 2}});
        assert!(!objects.patch(&key("a"), &same, false).unwrap().changed);
        let dry = objects
            .patch(&key("a"), &json!({"spec": {"x": 3}}), true)
            .unwrap();
        assert_eq!((dry.changed, &dry.object["spec"]["x"]), (false, &json!(3)));
        assert_eq!(objects.get(&key("a")).unwrap()["spec"]["x"], 2);
        assert_eq!(
            objects.patch(&key("b"), &same, false).unwrap_err(),
            ObjectError::NotFound
        );
        assert_eq!(
            objects
                .create(json!({"metadata": {"name": "a"}}))
                .unwrap_err(),
            ObjectError::AlreadyExists
        );
    }

    #[test]
    fn the_schema_guards_every_change() {
        fn no_bad(o: &Value) -> Result<(), SchemaViolation> {
            if o["spec"]["bad"].is_null() {
                Ok(())
            } else {
                Err(SchemaViolation("spec.bad: not allowed".into()))
            }
        }
        let mut objects = Objects::new(no_bad);
        objects.put(json!({"metadata": {"name": "a"}})).unwrap();
        let err = objects
            .patch(&key("a"), &json!({"spec": {"bad": 1}}), false)
            .unwrap_err();
        assert_eq!(
            err,
            ObjectError::Invalid(SchemaViolation("spec.bad: not allowed".into()))
        );
        assert!(objects.put(json!({"metadata": {}})).is_err());
        assert_eq!(objects.revision(), 1);
    }
}
