use super::*;
use proptest::prelude::*;

fn job_ids() -> impl Strategy<Value = Vec<(String, i64)>> {
    let id = prop_oneof![
        4 => (0u64..1u64 << 40).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => "[a-z0-9-]{1,12}",
        1 => "0[0-9]{1,4}",
    ];
    proptest::collection::vec((id, -(1i64 << 35)..(1i64 << 35)), 0..200)
}

fn set_of(entries: &[(String, i64)]) -> JobSet {
    entries
        .iter()
        .map(|(j, s)| (Arc::<str>::from(j.as_str()), *s))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn job_sets_round_trip_in_order(entries in job_ids()) {
        let set = set_of(&entries);
        let decoded = JobSet::decode(&set.encode()).unwrap();
        prop_assert_eq!(&decoded, &set);
        // Every job is there once, with the latest second given for it, text unchanged.
        for (job, _) in &entries {
            let latest = entries.iter().filter(|(j, _)| j == job).map(|e| e.1).max();
            prop_assert_eq!(decoded.get(job), latest);
        }
        let texts: Vec<Arc<str>> = decoded.iter().map(|(j, _)| j.text()).collect();
        let mut distinct: Vec<&str> = entries.iter().map(|(j, _)| j.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        prop_assert_eq!(texts.len(), distinct.len());
        let ids: Vec<JobId> = decoded.iter().map(|(j, _)| j).collect();
        prop_assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending");
    }

    #[test]
    fn insert_and_remove_keep_the_set_sorted(entries in job_ids(), gone in 0usize..50) {
        let mut set = JobSet::default();
        for (job, at) in &entries {
            set.insert(job, *at);
        }
        for (job, _) in &entries {
            let last = entries.iter().rev().find(|(j, _)| j == job).map(|e| e.1);
            prop_assert_eq!(set.get(job), last);
        }
        for (job, _) in entries.iter().take(gone) {
            set.remove(job);
            prop_assert_eq!(set.get(job), None);
        }
        prop_assert_eq!(JobSet::decode(&set.encode()).unwrap(), set);
    }

    #[test]
    fn garbage_is_refused_without_panic(text in ".{0,200}") {
        let _ = JobSet::decode(&text);
        let _ = BatchIds::decode(&text);
    }

    #[test]
    fn corrupted_values_are_refused_or_read_without_panic(
        entries in job_ids(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let value = set_of(&entries).encode();
        if !value.is_empty() {
            let mut bytes = value.into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(text) = String::from_utf8(bytes) {
                let _ = JobSet::decode(&text);
            }
        }
        // Valid deflate and base64 around random bytes: the parser itself meets garbage.
        let raw: Vec<u8> = entries.iter().flat_map(|(j, _)| j.bytes()).collect();
        let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut deflate, &raw).unwrap();
        let packed = deflate.finish().unwrap();
        let _ = JobSet::decode(&format!("{JOB_SET_PREFIX}{}", URL_SAFE_NO_PAD.encode(&packed)));
        let _ = BatchIds::decode(&format!("{BATCH_IDS_PREFIX}{}", URL_SAFE_NO_PAD.encode(&raw)));
    }

    #[test]
    fn batch_ids_round_trip(list in proptest::collection::vec((any::<u64>(), -(1i64 << 40)..(1i64 << 40)), 0..100)) {
        let ids = BatchIds(list);
        prop_assert_eq!(BatchIds::decode(&ids.encode()).unwrap(), ids);
    }
}

/// GitHub-like ids: 11-digit integers, an HRA's jobs spread among everyone else's.
fn github_like(n: usize, spread: u64) -> JobSet {
    let mut id = 29_679_449_000u64;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            id += 1 + state % spread;
            (
                Arc::<str>::from(id.to_string()),
                1_800_000_000 + (i as i64) / 5,
            )
        })
        .collect()
}

#[test]
fn a_github_job_id_takes_at_most_12_bytes_in_the_hra_and_64_in_memory() {
    // 5 jobs a second among ~2,000 a second GitHub-wide, over one hour.
    for (n, spread) in [(18_000, 800), (1_000, 800), (18_000, 1 << 20)] {
        let set = github_like(n, spread);
        let bytes = set.encode().len() as f64 / n as f64;
        eprintln!("{n} jobs, gaps up to {spread}: {bytes:.2} bytes each");
        assert!(
            bytes <= 12.0,
            "{n} jobs, gaps up to {spread}: {bytes:.2} bytes each"
        );
        assert!(set.heap_bytes() / n <= 64, "{}", set.heap_bytes() / n);
    }
}

#[test]
fn batch_ids_take_at_most_20_bytes_each() {
    let ids = BatchIds(
        (0..1024)
            .map(|i| {
                (
                    batch_hash(&format!("{:032x}.{i}", i * 7919)),
                    1_800_000_000 + i,
                )
            })
            .collect(),
    );
    let per = ids.encode().len() as f64 / 1024.0;
    assert!(per <= 20.0, "{per:.2}");
    assert_eq!(batch_hash("a"), batch_hash("a"));
    assert_ne!(batch_hash("a"), batch_hash("a.1"));
    // Fixed forever: replicas of different versions must agree.
    assert_eq!(
        batch_hash(""),
        0x141c_fc98_42c4_b0e3,
        "SHA-256 of nothing, first 8 bytes"
    );
}

#[test]
fn errors_name_what_is_wrong() {
    assert_eq!(
        JobSet::decode("[[\"1\",2]]"),
        Err(CodecError::Prefix(JOB_SET_PREFIX))
    );
    assert_eq!(JobSet::decode("z1:!!"), Err(CodecError::Encoding("base64")));
    assert_eq!(
        JobSet::decode("z1:AAAA"),
        Err(CodecError::Encoding("deflate data"))
    );
    let too_long = format!("z1:{}", "A".repeat(MAX_ENCODED));
    assert!(matches!(
        JobSet::decode(&too_long),
        Err(CodecError::TooLong(_))
    ));
    assert_eq!(JobSet::decode("").unwrap().len(), 0);
    assert_eq!(JobSet::default().encode(), "");
}

#[test]
fn numeric_ids_keep_their_text() {
    for job in [
        "0",
        "7",
        "18446744073709551615",
        "007",
        "18446744073709551616",
        "-1",
        "1e3",
        "j-1",
    ] {
        let mut set = JobSet::default();
        set.insert(job, 5);
        let back = JobSet::decode(&set.encode()).unwrap();
        let texts: Vec<Arc<str>> = back.iter().map(|(j, _)| j.text()).collect();
        assert_eq!(texts, vec![Arc::<str>::from(job)], "{job}");
    }
}

#[test]
fn remove_first_drops_the_soonest_seconds() {
    let mut set: JobSet = [("3", 30), ("1", 10), ("b", 10), ("2", 20)]
        .into_iter()
        .map(|(j, s)| (Arc::<str>::from(j), s))
        .collect();
    assert_eq!(set.remove_first(2), 2);
    let left: Vec<(Arc<str>, i64)> = set.iter().map(|(j, s)| (j.text(), s)).collect();
    assert_eq!(left, vec![("2".into(), 20), ("3".into(), 30)]);
    assert_eq!(set.retain_seconds(|s| s > 20), 1);
    assert_eq!(set.max_second(), Some(30));
}
