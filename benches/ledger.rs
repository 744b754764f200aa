//! The job ledger's cost: memory per HRA after a day of jobs, and time per recorded event.
//! `cargo bench --bench ledger` prints `ledger_bytes_per_hra` (process RSS grown, per HRA) and
//! `ledger_record_us` for 1,000 HRAs that each saw 1,000 jobs (queued, started, completed)
//! spread over 24 hours of arrivals, so every bucket of the window holds samples.

use batch_scaler::domain::ledger::{JobEvent, Ledger, Profile};
use batch_scaler_testkit::process::rss_kib;
use chrono::{DateTime, TimeDelta};
use std::{sync::Arc, time::Instant};

const HRAS: usize = 1_000;
const JOBS: u64 = 1_000;

fn main() {
    let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let before = rss_kib("self");
    let started = Instant::now();
    let mut ledgers = Vec::with_capacity(HRAS);
    let mut events = 0u64;
    let mut x = 12_345u64;
    let mut rand = |n: u64| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (x >> 33) % n
    };
    for _ in 0..HRAS {
        let mut ledger = Ledger::new(t0, TimeDelta::hours(24));
        for j in 0..JOBS {
            let id: Arc<str> = Arc::from((40_000_000_000 + j * 31).to_string());
            let created = t0 + TimeDelta::seconds((j * 86_400 / JOBS) as i64);
            let start = created + TimeDelta::seconds(5 + rand(300) as i64);
            let done = start + TimeDelta::seconds(60 + rand(3_600) as i64);
            let c = Some(created);
            ledger.record(&id, JobEvent::Queued { created: c }, created);
            ledger.record(
                &id,
                JobEvent::Started {
                    created: c,
                    started: start,
                },
                start,
            );
            let completed = JobEvent::Completed {
                created: c,
                started: Some(start),
                completed: done,
                ran: true,
            };
            ledger.record(&id, completed, done);
            events += 3;
            if j % 20 == 0 {
                let ends = vec![(done + TimeDelta::minutes(30), 5)];
                ledger.written(Profile::new(done, Some(20), ends), &[], done);
            }
        }
        ledgers.push(ledger);
    }
    let took = started.elapsed();
    let after = rss_kib("self");
    let (buckets, bins, active, finished) =
        ledgers.iter().map(Ledger::size).fold((0, 0, 0, 0), |a, s| {
            (a.0 + s.0, a.1 + s.1, a.2 + s.2, a.3 + s.3)
        });
    let per_hra = (after.saturating_sub(before) as f64 * 1024.0) / HRAS as f64;
    println!(
        "ledger hras={HRAS} jobs_per_hra={JOBS} ledger_bytes_per_hra={per_hra:.0} ledger_record_us={:.2} \
         (per HRA: {} buckets, {} sketch bins, {} active jobs, {} finished jobs remembered)",
        took.as_secs_f64() * 1e6 / events as f64,
        buckets / HRAS,
        bins / HRAS,
        active / HRAS,
        finished / HRAS,
    );
    let figures = ledgers[0].figures(t0 + TimeDelta::hours(24)).0;
    println!(
        "ledger one HRA: completed={} wait_p90_s={:.1} run_p90_s={:.1} utilization={:.2}",
        figures.sums.completed,
        figures.sums.wait.quantile(0.9).unwrap_or(0.0),
        figures.sums.run.quantile(0.9).unwrap_or(0.0),
        figures.busy_seconds() / figures.sums.reserved_seconds.max(1.0),
    );
}
