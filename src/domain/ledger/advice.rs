//! What the figures suggest: a trigger duration that covers the jobs, and one sentence a
//! person acts on.

use super::Figures;
use crate::domain::duration::format_go_duration;
use chrono::TimeDelta;

/// Completed jobs needed before a duration is suggested.
pub const ENOUGH_JOBS: u64 = 20;

/// A suggested duration and the sentence that explains what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advice {
    /// The smallest whole minute ≥ 1.25 × p99 of `created_at` → `completed_at`, once
    /// [`ENOUGH_JOBS`] completed.
    pub suggested: Option<TimeDelta>,
    /// One sentence.
    pub text: String,
}

/// Advice for an HRA whose reservations live `duration`, from `figures`.
pub fn advise(figures: &Figures, duration: TimeDelta) -> Advice {
    let sums = &figures.sums;
    let suggested = (sums.total.count >= ENOUGH_JOBS)
        .then(|| sums.total.quantile(0.99))
        .flatten()
        .map(|p99| {
            let minutes = (p99 * 1.25 / 60.0).ceil().max(1.0);
            TimeDelta::minutes(minutes as i64)
        });
    let d = format_go_duration(duration);
    let text = match suggested {
        _ if sums.expired_before_start > 0 => format!(
            "{} jobs lost their reservation before they started: raise the duration from {d} to {}, or run with --reservation-clock started.",
            sums.expired_before_start,
            suggested.map_or_else(|| "more than jobs wait".to_owned(), format_go_duration)
        ),
        _ if sums.expired_while_running > 0 => format!(
            "{} jobs' reservations expired while they ran, so their runners could be scaled in: raise the duration from {d} to {}.",
            sums.expired_while_running,
            suggested.map_or_else(|| "more than jobs take".to_owned(), format_go_duration)
        ),
        None => format!(
            "{} of {ENOUGH_JOBS} jobs completed so far: too few to suggest a duration.",
            sums.total.count
        ),
        Some(s) if duration >= s * 2 => format!(
            "The duration {d} is {:.0}× what jobs need ({} covers 99% of them with a 25% margin): lowering it frees runners sooner when a completed delivery is lost.",
            duration.num_seconds() as f64 / s.num_seconds().max(1) as f64,
            format_go_duration(s)
        ),
        Some(s) if duration < s => format!(
            "The duration {d} is shorter than the slowest jobs need: raise it to {}.",
            format_go_duration(s)
        ),
        Some(s) => format!(
            "The duration {d} fits: {} covers 99% of jobs with a 25% margin.",
            format_go_duration(s)
        ),
    };
    Advice { suggested, text }
}
