//! The service's settings a plan follows: the default life, the list's layout, and when a
//! job's reservation starts to age (`--reservation-clock`).

use crate::domain::groups::Shape;
use chrono::TimeDelta;

/// When a job's reservation starts to live its duration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReservationClock {
    /// From the job's `queued` (ARC's semantics): a job still waiting when its duration ends
    /// loses its capacity.
    #[default]
    Queued,
    /// From the job's start: a queued job's reservation holds until its `in_progress`, at
    /// most `max_queue_time`; the start gives it the duration from then.
    Started {
        /// How long a queued job's reservation holds without a start.
        max_queue_time: TimeDelta,
    },
}

impl ReservationClock {
    /// The flag's value: `queued` or `started`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Started { .. } => "started",
        }
    }
}

/// What a plan needs of the service's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Life of reservations whose event gives none, on HRAs without a trigger duration.
    pub default_life: TimeDelta,
    /// How the list is laid out (named entries, then groups).
    pub shape: Shape,
    /// When a job's reservation starts to age.
    pub clock: ReservationClock,
}

impl Rules {
    /// The defaults: ARC's clock and the layout every writer uses, with `default_life`.
    pub fn new(default_life: TimeDelta) -> Self {
        Self {
            default_life,
            shape: Shape::DEFAULT,
            clock: ReservationClock::Queued,
        }
    }
}
