use super::*;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

const LIMITS: TombstoneLimits = TombstoneLimits {
    ttl: TimeDelta::seconds(3600),
    capacity: 3,
};

fn jobs(ids: &[&str]) -> Vec<Arc<str>> {
    ids.iter().map(|j| Arc::from(*j)).collect()
}

/// Applies a write to what was read, as a store would, and reads it back from the values.
fn apply(read: &FinishedJobs, w: &FinishedWrite) -> FinishedJobs {
    let mut buckets = read.buckets.clone();
    for (start, value) in &w.changes {
        match value {
            Some(v) => buckets.insert(*start, Arc::new(Bucket::decode(v).unwrap())),
            None => buckets.remove(start),
        };
    }
    let legacy = if w.remove_legacy {
        None
    } else {
        read.legacy.clone()
    };
    FinishedJobs { buckets, legacy }
}

fn remembered(f: &FinishedJobs, now: DateTime<Utc>) -> Vec<String> {
    let mut all: Vec<String> = f
        .buckets
        .values()
        .flat_map(|b| b.jobs.iter().map(|(j, _)| j.text().to_string()))
        .filter(|j| f.contains(j, now))
        .collect();
    all.sort();
    all
}

/// `n` GitHub-like job ids after `id`, `gap` apart (`id` moves past them).
fn numbered(id: &mut u64, n: usize, gap: u64) -> Vec<Arc<str>> {
    (0..n)
        .map(|_| {
            *id += gap;
            Arc::from(id.to_string())
        })
        .collect()
}

fn written_bytes(w: &FinishedWrite) -> usize {
    w.changes
        .iter()
        .filter_map(|(_, v)| v.as_ref())
        .map(String::len)
        .sum()
}

#[test]
fn table_of_next() {
    type Earlier = &'static [(i64, &'static [&'static str])];
    struct Case {
        name: &'static str,
        earlier: Earlier,
        now: i64,
        jobs: &'static [&'static str],
        want: &'static [&'static str],
        dropped: u64,
    }
    let cases = [
        Case {
            name: "new jobs are remembered",
            earlier: &[],
            now: 0,
            jobs: &["j"],
            want: &["j"],
            dropped: 0,
        },
        Case {
            name: "expired jobs are forgotten, live ones kept",
            earlier: &[(0, &["old"]), (3000, &["live"])],
            now: 3700,
            jobs: &[],
            want: &["live"],
            dropped: 0,
        },
        Case {
            name: "a job finishing again is refreshed, not doubled",
            earlier: &[(0, &["j"])],
            now: 300,
            jobs: &["j", "j"],
            want: &["j"],
            dropped: 0,
        },
        Case {
            name: "over the capacity the soonest-expiring go first",
            earlier: &[(0, &["a"]), (200, &["b"]), (400, &["c"])],
            now: 600,
            jobs: &["d", "e"],
            want: &["c", "d", "e"],
            dropped: 2,
        },
    ];
    for c in cases {
        let mut f = FinishedJobs::default();
        for (when, ids) in c.earlier {
            let w = next(&f, &jobs(ids), at(*when), LIMITS);
            f = apply(&f, &w);
        }
        let w = next(&f, &jobs(c.jobs), at(c.now), LIMITS);
        let after = apply(&f, &w);
        assert_eq!(after, w.after, "{}: the write says what it leaves", c.name);
        assert_eq!(remembered(&after, at(c.now)), c.want, "{}", c.name);
        assert_eq!(w.dropped, c.dropped, "{}", c.name);
        assert_eq!(after.len(), c.want.len(), "{}: one entry per job", c.name);
    }
    let refreshed = next(&FinishedJobs::default(), &jobs(&["j"]), at(0), LIMITS).after;
    let again = next(&refreshed, &jobs(&["j"]), at(300), LIMITS).after;
    assert_eq!(again.until("j", at(300)), Some(at(3900)));
}

#[test]
fn a_write_encodes_only_the_bucket_it_changes() {
    let limits = TombstoneLimits {
        ttl: TimeDelta::hours(1),
        capacity: 100_000,
    };
    assert_eq!(limits.bucket_width(), 120);
    // 36,000 jobs finished over the last hour, 10 a second.
    let mut f = FinishedJobs::default();
    let mut id = 29_000_000_000u64;
    for s in 0..3600 {
        let batch = numbered(&mut id, 10, 37);
        f = next(&f, &batch, at(s), limits).after;
    }
    assert_eq!(f.len(), 36_000);
    assert!(f.buckets.len() <= 31, "{}", f.buckets.len());
    assert!(f.encoded_len() < 36_000 * 6, "{}", f.encoded_len());
    let w = next(&f, &jobs(&["1"]), at(3600), limits);
    assert!(
        w.changes.len() <= 2,
        "the newest bucket, and an expired one removed"
    );
    assert!(
        written_bytes(&w) < 2_000,
        "{} bytes written",
        written_bytes(&w)
    );
}

#[test]
fn the_one_hour_horizon_holds_at_5_jobs_a_second() {
    let limits = TombstoneLimits {
        ttl: TimeDelta::hours(1),
        capacity: DEFAULT_CAPACITY,
    };
    let mut f = FinishedJobs::default();
    let mut dropped = 0;
    let mut id = 31_000_000_000u64;
    let mut first = None;
    for s in 0..3_700 {
        let batch = numbered(&mut id, 5, 211);
        let first = &*first.get_or_insert_with(|| batch[0].clone());
        let w = next(&f, &batch, at(s), limits);
        dropped += w.dropped;
        f = w.after;
        assert_eq!(f.contains(first, at(s)), s < 3600, "at {s} s");
    }
    assert_eq!(dropped, 0, "nothing forgotten before its hour");
    assert!(f.encoded_len() <= MAX_FINISHED_BYTES);
}

#[test]
fn the_older_annotation_is_read_and_moved_into_buckets() {
    let value = format!(
        r#"[["7",{}],["j-x",{}],["old",{}]]"#,
        at(50).timestamp(),
        at(900).timestamp(),
        at(-5).timestamp()
    );
    let f = FinishedJobs {
        buckets: BTreeMap::new(),
        legacy: Some(Arc::new(parse_legacy(&value).unwrap())),
    };
    assert!(f.contains("7", at(0)) && f.contains("j-x", at(0)) && !f.contains("old", at(0)));
    let w = next(&f, &jobs(&["8"]), at(0), LIMITS);
    assert!(w.remove_legacy);
    let after = apply(&f, &w);
    assert_eq!(after.legacy, None);
    assert_eq!(
        remembered(&after, at(0)),
        ["7", "8", "j-x"],
        "nothing lost on upgrade"
    );
    assert_eq!(after.until("7", at(0)), Some(at(50)), "expiry kept");
    assert!(parse_legacy("a=1").is_err());
}

#[test]
fn long_job_ids_are_bounded_by_bytes_too() {
    let limits = TombstoneLimits {
        ttl: TimeDelta::seconds(100),
        capacity: 100_000,
    };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let ids: Vec<Arc<str>> = (0..2_000)
        .map(|_| {
            (0..13)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    format!("{state:016x}")
                })
                .collect::<String>()
                .into()
        })
        .collect();
    let w = next(&FinishedJobs::default(), &ids, at(0), limits);
    let bytes = w.after.encoded_len();
    assert!(bytes <= MAX_FINISHED_BYTES, "{bytes}");
    assert!(w.after.len() > 500, "as many as fit: {}", w.after.len());
    assert_eq!(w.dropped as usize + w.after.len(), 2_000);
}
