//! Scale events as we queue them, validated.

use super::job_times::JobTimes;
use super::{
    hra::HraKey,
    planner::PlanEvent,
    validate::{
        FieldError, check_job_time, check_repository, quote, validate_name, validate_namespace,
    },
};
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Arc;

/// Largest `|amount|` one event may carry.
pub const MAX_AMOUNT: i32 = 1000;
/// Longest `event_id` or `job_id`.
pub const MAX_ID_LEN: usize = 256;
/// Longest reservation life one event may ask for.
pub const MAX_DURATION: TimeDelta = TimeDelta::days(7);

/// A validated scale event for one HRA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleEvent {
    /// The HRA it is for.
    pub key: HraKey,
    /// `> 0` adds reservations, `< 0` completes, `0` refreshes.
    pub amount: i32,
    /// Life of added reservations; `None`: decided when the batch is planned, from the HRA
    /// as read (its trigger's duration, else the server default).
    pub duration: Option<TimeDelta>,
    /// Idempotency key, if the producer gave one.
    pub event_id: Option<String>,
    /// Workflow job id, if the producer gave one.
    pub job_id: Option<String>,
    /// The job's repository (`OWNER/REPO`), when known: its reservation can then be checked
    /// against GitHub.
    pub repository: Option<Arc<str>>,
    /// Where the event came from.
    pub origin: Origin,
    /// The job's start (`amount` 0): on the started clock its reservation lives its
    /// duration from then.
    pub started: Option<DateTime<Utc>>,
    /// The job's times, for the job ledger (`amount` 0 with times and no start: a record
    /// only, batched with nothing).
    pub times: Option<JobTimes>,
}

/// Where an event came from: a producer, or this service repairing drift from GitHub.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Sent by a producer (a webhook frontend, an operator).
    #[default]
    Producer,
    /// Recovered from a webhook delivery that failed.
    Recovered,
    /// A reservation whose job GitHub reports finished (or gone).
    Verified,
}

impl Origin {
    /// Lowercase name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Producer => "producer",
            Self::Recovered => "recovered",
            Self::Verified => "verified",
        }
    }
}

/// The fields of a scale event as a producer sent them (empty strings meaning "unset").
#[derive(Clone, Debug, Default)]
pub struct RawScaleEvent {
    /// HRA namespace.
    pub namespace: String,
    /// HRA name.
    pub name: String,
    /// Reservations to add (> 0) or complete (< 0).
    pub amount: i32,
    /// Life of added reservations; `None` or zero: the default.
    pub duration: Option<TimeDelta>,
    /// Idempotency key.
    pub event_id: String,
    /// Workflow job id.
    pub job_id: String,
    /// The job's repository, `OWNER/REPO`.
    pub repository: String,
    /// When the job started (a start: `amount` 0, `job_id` set).
    pub started: Option<DateTime<Utc>>,
    /// The job's times (`job_id` set).
    pub times: Option<JobTimes>,
}

impl ScaleEvent {
    /// Validates an event received at `now`; a missing or zero duration is left to the plan
    /// (`None`).
    pub fn validate(raw: RawScaleEvent, now: DateTime<Utc>) -> Result<Self, FieldError> {
        let RawScaleEvent {
            namespace,
            name,
            amount,
            duration,
            event_id,
            job_id,
            repository,
            started,
            times,
        } = raw;
        let key = validate_target(namespace, name)?;
        if amount.unsigned_abs() > MAX_AMOUNT.unsigned_abs() {
            return Err(FieldError::new(
                "amount",
                format!("must be between -{MAX_AMOUNT} and {MAX_AMOUNT}, got {amount}"),
            ));
        }
        let duration = match duration {
            Some(d) if d > MAX_DURATION => {
                return Err(FieldError::new(
                    "duration",
                    format!("must be at most 7 days (604800s), got {}s", d.num_seconds()),
                ));
            }
            Some(d) if d < TimeDelta::zero() => {
                return Err(FieldError::new("duration", "must not be negative"));
            }
            Some(d) if !d.is_zero() => Some(d),
            _ => None,
        };
        for (field, id) in [("event_id", &event_id), ("job_id", &job_id)] {
            if id.len() > MAX_ID_LEN {
                return Err(FieldError::new(
                    field,
                    format!("at most {MAX_ID_LEN} bytes, got {}", id.len()),
                ));
            }
        }
        if let Some(at) = started {
            check_job_time("started_at", at, now)?;
            if job_id.is_empty() {
                return Err(FieldError::new(
                    "job_id",
                    "required for a start (started_at set): it names the reservation to start",
                ));
            }
            if amount != 0 {
                return Err(FieldError::new(
                    "amount",
                    format!("must be 0 for a start (started_at set), got {amount}"),
                ));
            }
        } else if !job_id.is_empty() && amount.abs() != 1 && !(amount == 0 && times.is_some()) {
            return Err(FieldError::new(
                "amount",
                format!(
                    "must be 1 or -1 for an event with a job_id (0 with job_times or started_at), got {amount}"
                ),
            ));
        }
        if let Some(times) = &times {
            if job_id.is_empty() {
                return Err(FieldError::new(
                    "job_id",
                    "required with job_times: they are the job's",
                ));
            }
            times.validate(now)?;
        }
        if !repository.is_empty() {
            check_repository(&repository).map_err(|why| {
                FieldError::new(
                    "repository",
                    format!("must be OWNER/REPO ({why}), got {}", quote(&repository)),
                )
            })?;
        }
        Ok(Self {
            key,
            amount,
            duration,
            event_id: non_empty(event_id),
            job_id: non_empty(job_id),
            repository: (!repository.is_empty()).then(|| Arc::from(repository)),
            origin: Origin::Producer,
            started,
            times,
        })
    }

    /// True for a job's times alone (`amount` 0, no start): recorded by the job ledger,
    /// batched with nothing.
    pub fn is_record_only(&self) -> bool {
        self.amount == 0 && self.started.is_none() && self.job_id.is_some()
    }

    /// What the planner needs of this event.
    pub fn plan_event(&self) -> PlanEvent {
        PlanEvent {
            amount: i64::from(self.amount),
            duration: self.duration,
            job: self.job_id.as_deref().map(Arc::from),
            started: self.started,
        }
    }
}

/// `None` for an empty string (proto3's "unset").
pub fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Validates a namespace (DNS-1123 label) and name (DNS-1123 subdomain) pair.
pub fn validate_target(namespace: String, name: String) -> Result<HraKey, FieldError> {
    validate_namespace(&namespace)?;
    validate_name(&name)?;
    Ok(HraKey { namespace, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn check(e: RawScaleEvent) -> Result<ScaleEvent, FieldError> {
        ScaleEvent::validate(e, now())
    }

    fn event(namespace: &str, name: &str, amount: i32) -> RawScaleEvent {
        RawScaleEvent {
            namespace: namespace.into(),
            name: name.into(),
            amount,
            ..Default::default()
        }
    }

    fn field_of(e: RawScaleEvent) -> String {
        check(e).unwrap_err().field
    }

    #[test]
    fn accepts_a_good_event_and_leaves_a_missing_duration_to_the_plan() {
        let e = check(event("runners", "linux.x64-1", 1)).unwrap();
        assert_eq!(e.key, HraKey::new("runners", "linux.x64-1"));
        assert_eq!(e.duration, None);
        assert_eq!(e.event_id, None);
        let zero = RawScaleEvent {
            duration: Some(TimeDelta::zero()),
            ..event("a", "b", -1)
        };
        assert_eq!(check(zero).unwrap().duration, None);
        let given = RawScaleEvent {
            duration: Some(TimeDelta::milliseconds(90_500)),
            event_id: "d1".into(),
            ..event("a", "b", 0)
        };
        let e = check(given).unwrap();
        assert_eq!(e.duration, Some(TimeDelta::milliseconds(90_500)));
        assert_eq!(e.event_id.as_deref(), Some("d1"));
    }

    #[test]
    fn rejects_bad_namespaces_and_names_naming_the_field() {
        for ns in ["", "Default", "a_b", "-a", "a-", &"x".repeat(64), "a.b"] {
            assert_eq!(field_of(event(ns, "ok", 1)), "namespace", "{ns:?}");
        }
        for name in ["", "A", "a..b", ".a", "a.", "a_b", &"x".repeat(254)] {
            assert_eq!(field_of(event("ok", name, 1)), "name", "{name:?}");
        }
        let longest = format!("{}.b", "x".repeat(63));
        assert!(check(event("ok", &longest, 1)).is_ok());
    }

    #[test]
    fn rejects_out_of_range_amounts_and_durations() {
        assert_eq!(field_of(event("a", "b", 1001)), "amount");
        assert_eq!(field_of(event("a", "b", -1001)), "amount");
        assert_eq!(field_of(event("a", "b", i32::MIN)), "amount");
        assert!(check(event("a", "b", -1000)).is_ok());
        for d in [
            MAX_DURATION + TimeDelta::nanoseconds(1),
            TimeDelta::seconds(-1),
        ] {
            let e = RawScaleEvent {
                duration: Some(d),
                ..event("a", "b", 1)
            };
            assert_eq!(field_of(e), "duration", "{d:?}");
        }
        let week = RawScaleEvent {
            duration: Some(MAX_DURATION),
            ..event("a", "b", 1)
        };
        assert!(check(week).is_ok());
    }

    #[test]
    fn job_events_must_be_plus_or_minus_one() {
        for amount in [0, 2, -3] {
            let e = RawScaleEvent {
                job_id: "42".into(),
                ..event("a", "b", amount)
            };
            assert_eq!(field_of(e), "amount", "{amount}");
        }
        let e = RawScaleEvent {
            job_id: "42".into(),
            ..event("a", "b", -1)
        };
        let e = check(e).unwrap();
        assert_eq!(e.plan_event().job.as_deref(), Some("42"));
        let long = RawScaleEvent {
            event_id: "x".repeat(257),
            ..event("a", "b", 1)
        };
        assert_eq!(field_of(long), "event_id");
    }

    #[test]
    fn a_repository_must_be_owner_slash_repo() {
        for bad in [
            "octo",
            "octo/",
            "/repo",
            "a/b/c",
            "octo/re po",
            "octo/..",
            "o?x/r",
        ] {
            let e = RawScaleEvent {
                job_id: "42".into(),
                repository: bad.into(),
                ..event("a", "b", 1)
            };
            assert_eq!(field_of(e), "repository", "{bad:?}");
        }
        let e = RawScaleEvent {
            job_id: "42".into(),
            repository: "octo-org/hello_world.rs".into(),
            ..event("a", "b", 1)
        };
        let e = check(e).unwrap();
        assert_eq!(e.repository.as_deref(), Some("octo-org/hello_world.rs"));
        assert_eq!(e.origin, Origin::Producer);
    }

    #[test]
    fn a_start_names_its_job_carries_no_amount_and_a_sane_time() {
        let start = |amount: i32, job: &str, at: DateTime<Utc>| RawScaleEvent {
            job_id: job.into(),
            started: Some(at),
            ..event("a", "b", amount)
        };
        let e = check(start(0, "42", now() - TimeDelta::minutes(3))).unwrap();
        let planned = e.plan_event();
        assert_eq!(planned.started, Some(now() - TimeDelta::minutes(3)));
        assert_eq!((planned.amount, planned.job.as_deref()), (0, Some("42")));
        assert_eq!(field_of(start(1, "42", now())), "amount");
        assert_eq!(field_of(start(0, "", now())), "job_id");
        let old = DateTime::from_timestamp(1_199_145_599, 0).unwrap();
        assert_eq!(field_of(start(0, "42", old)), "started_at");
        let ahead = now() + TimeDelta::minutes(61);
        let err = check(start(0, "42", ahead)).unwrap_err();
        assert_eq!(err.field, "started_at");
        assert!(err.message.contains("1h after the server's clock"), "{err}");
        assert!(check(start(0, "42", now() + TimeDelta::minutes(59))).is_ok());
    }

    #[test]
    fn publish_index_prefixes_the_field() {
        let err = check(event("a", "B", 1)).unwrap_err().at_index(3);
        assert_eq!(err.field, "events[3].name");
        assert!(
            err.to_string()
                .starts_with("events[3].name: must be a DNS-1123 subdomain")
        );
    }
}
