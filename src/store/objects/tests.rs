//! Tests of the object store: versions, patches, schema, sizes.
use super::*;

#[test]
fn stored_sizes_follow_every_change() {
    let mut objects = Objects::new(any);
    let k = key("a");
    let check = |objects: &Objects| {
        let (object, size) = objects.get_sized(&k).unwrap();
        assert_eq!(size, serde_json::to_vec(object).unwrap().len());
    };
    objects
        .put(json!({"metadata": {"name": "a"}, "x": 1}))
        .unwrap();
    check(&objects);
    for i in 0..120 {
        let patched = objects
            .patch(&k, &json!({"x": "y".repeat(i)}), false)
            .unwrap();
        assert_eq!(
            patched.bytes,
            serde_json::to_vec(&patched.object).unwrap().len()
        );
        check(&objects);
    }
    objects.modify(&k, |o| o["z"] = json!([1, 2])).unwrap();
    check(&objects);
    let listed: Vec<usize> = objects.list_sized(None).map(|(_, n)| n).collect();
    assert_eq!(listed, [objects.get_sized(&k).unwrap().1]);
    objects.remove(&k);
    assert!(objects.get_sized(&k).is_none());
}

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
