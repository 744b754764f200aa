use super::*;
use proptest::prelude::*;

fn members() -> impl Strategy<Value = Vec<(String, i64, Option<&'static str>)>> {
    let id = prop_oneof![
        4 => (0u64..1u64 << 40).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => "[a-z0-9-]{1,12}",
    ];
    let repo = prop::option::of(prop::sample::select(vec!["o/a", "o/b", "other/c"]));
    proptest::collection::vec((id, -(1i64 << 35)..(1i64 << 35), repo), 0..200)
}

fn group_of(entries: &[(String, i64, Option<&'static str>)]) -> Members {
    let mut group = Members::default();
    for (job, since, repo) in entries {
        group.insert(job, *since, repo.map(Arc::from).as_ref());
    }
    group
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn groups_round_trip_with_seconds_and_repositories(entries in members(), gone in 0usize..50) {
        let mut group = group_of(&entries);
        for (job, _, _) in entries.iter().take(gone) {
            let held = group.contains(job);
            let removed = group.remove(job);
            prop_assert_eq!(removed.is_some(), held);
            if let Some(t) = removed {
                // What leaves is the job as first inserted: its id, second and repository.
                let first = entries.iter().find(|(j, _, _)| *j == *job).unwrap();
                prop_assert_eq!(&*t.job, job.as_str());
                prop_assert_eq!(t.since, first.1);
                prop_assert_eq!(t.repository.as_deref(), first.2);
            }
            prop_assert!(!group.contains(job));
        }
        let decoded = Members::decode(&group.encode()).unwrap();
        let all: Vec<Taken> = group.iter().collect();
        prop_assert_eq!(decoded.iter().collect::<Vec<_>>(), all.clone());
        // The first insert of a job wins; every kept job has its own second and repository.
        for t in &all {
            let first = entries.iter().find(|(j, _, _)| **j == *t.job).unwrap();
            prop_assert_eq!(t.since, first.1);
            prop_assert_eq!(t.repository.as_deref(), first.2);
        }
    }

    #[test]
    fn corrupted_groups_are_refused_or_read_without_panic(
        entries in members(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = group_of(&entries).encode().into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = Members::decode(&text);
        }
        let raw: Vec<u8> = entries.iter().flat_map(|(j, _, _)| j.bytes()).collect();
        let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut deflate, &raw).unwrap();
        let packed = deflate.finish().unwrap();
        let _ = Members::decode(&format!("{MEMBERS_PREFIX}{}", URL_SAFE_NO_PAD.encode(&packed)));
    }
}

#[test]
fn the_smallest_ids_are_taken_first_with_what_is_known_of_them() {
    let mut group = Members::default();
    let repo: Arc<str> = "o/a".into();
    for (job, since) in [("30", 3), ("b", 9), ("10", 1), ("20", 2)] {
        assert!(group.insert(job, since, Some(&repo)));
    }
    assert!(!group.insert("10", 99, None), "a member is not added twice");
    assert!(!group.insert("", 1, None), "an empty id is no job");
    let taken = group.take_first(2);
    let ids: Vec<&str> = taken.iter().map(|t| &*t.job).collect();
    assert_eq!(ids, ["10", "20"]);
    assert_eq!(
        (taken[0].since, taken[0].repository.as_deref()),
        (1, Some("o/a"))
    );
    assert_eq!(group.take_first(5).len(), 2);
    assert!(group.is_empty());
    assert_eq!(
        Members::decode(&group.encode()).unwrap(),
        Members::default()
    );
}

#[test]
fn group_errors_name_what_is_wrong() {
    assert_eq!(
        Members::decode("z1:AA"),
        Err(CodecError::Prefix(MEMBERS_PREFIX))
    );
    assert_eq!(
        Members::decode("g1:!!"),
        Err(CodecError::Encoding("base64"))
    );
    let pack = |raw: &[u8]| {
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut d, raw).unwrap();
        format!(
            "{MEMBERS_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(d.finish().unwrap())
        )
    };
    // One numeric member naming repository 2 of a table of 1.
    let bad_repo = pack(&[1, 1, 1, b'r', 1, 5, 0, 2, 0]);
    assert_eq!(
        Members::decode(&bad_repo),
        Err(CodecError::Corrupt("repository out of range"))
    );
    let good = pack(&[1, 1, 1, b'r', 1, 5, 0, 1, 0]);
    let read = Members::decode(&good).unwrap();
    assert_eq!(read.iter().next().unwrap().repository.as_deref(), Some("r"));
    assert_eq!(
        Members::decode(&pack(&[2])),
        Err(CodecError::Corrupt("unknown group version"))
    );
}

#[test]
fn a_waiting_github_job_takes_at_most_4_bytes_of_its_group() {
    // A backlog built over an hour: ids spread among everyone else's, seconds rising.
    let repos: Vec<Arc<str>> = (0..20)
        .map(|i| Arc::from(format!("octo-org/repo-{i}")))
        .collect();
    for (n, spread) in [(2_048, 50), (2_048, 800)] {
        let mut group = Members::default();
        let mut id = 29_679_449_000u64;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for i in 0..n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            id += 1 + state % spread;
            let repo = &repos[(state >> 20) as usize % repos.len()];
            group.insert(&id.to_string(), 1_800_000_000 + i as i64 / 20, Some(repo));
        }
        let per = group.encode().len() as f64 / n as f64;
        eprintln!("{n} jobs, gaps up to {spread}: {per:.2} bytes each");
        assert!(per <= 4.0, "{per:.2}");
    }
}
