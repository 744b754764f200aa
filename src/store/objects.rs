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
    /// Its size as compact JSON.
    pub bytes: usize,
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
    /// Each object's size as compact JSON, measured once when it is stored.
    sizes: std::collections::HashMap<ObjectKey, usize>,
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
            sizes: Default::default(),
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
        let key = key_of(&object);
        self.sizes.insert(key.clone(), json_len(&object));
        self.objects.insert(key, object.clone());
        Ok(object)
    }

    /// The stored object.
    pub fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// The stored object and its size as compact JSON.
    pub fn get_sized(&self, key: &ObjectKey) -> Option<(&Value, usize)> {
        let object = self.objects.get(key)?;
        Some((object, self.size(key, object)))
    }

    fn size(&self, key: &ObjectKey, object: &Value) -> usize {
        self.sizes
            .get(key)
            .copied()
            .unwrap_or_else(|| json_len(object))
    }

    /// Every object with its size, or those of one namespace, ordered by namespace then
    /// name.
    pub fn list_sized<'a>(
        &'a self,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Value, usize)> {
        self.objects
            .iter()
            .filter(move |((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(k, o)| (o, self.size(k, o)))
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
        self.sizes.remove(key);
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
            let bytes = json_len(&next);
            return Ok(Patched {
                object: next,
                changed: false,
                bytes,
            });
        }
        let bytes = json_len(&next);
        if let Some(limit) = self.max_bytes
            && bytes > limit
        {
            return Err(ObjectError::TooLarge { bytes, limit });
        }
        let (object, bytes) = self.store_checked(key, next, Some(bytes));
        Ok(Patched {
            object,
            changed: true,
            bytes,
        })
    }

    fn replace(&mut self, key: &ObjectKey, object: Value) -> Result<Value, ObjectError> {
        (self.schema)(&object)?;
        Ok(self.store_checked(key, object, None).0)
    }

    /// Stores an object that passed the schema, with a new resourceVersion; `bytes` is its
    /// size before the stamp, when known (the stamp only changes the resourceVersion).
    fn store_checked(
        &mut self,
        key: &ObjectKey,
        mut object: Value,
        bytes: Option<usize>,
    ) -> (Value, usize) {
        let version_len = |o: &Value| o["metadata"]["resourceVersion"].as_str().map(str::len);
        let before = version_len(&object);
        self.stamp(&mut object);
        let bytes = match (bytes, before, version_len(&object)) {
            (Some(bytes), Some(before), Some(after)) => bytes - before + after,
            _ => json_len(&object),
        };
        self.sizes.insert(key.clone(), bytes);
        self.objects.insert(key.clone(), object.clone());
        (object, bytes)
    }
}

/// Length of `value` as compact JSON (as `serde_json::to_vec` writes it), without building
/// the text: strings are measured with their escapes in one pass over their bytes.
pub fn json_len(value: &Value) -> usize {
    fn string_len(s: &str) -> usize {
        // Most strings (the annotations' base64 above all) need no escape: one counting pass
        // the compiler vectorizes, then the exact count only where there are some.
        let special = s
            .bytes()
            .filter(|&b| b < 0x20 || b == b'"' || b == b'\\')
            .count();
        if special == 0 {
            return s.len() + 2;
        }
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
mod tests;
