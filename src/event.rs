//! Scale events as we queue them, and their validation from the wire.

use crate::{error::FieldError, model::HraKey, pb, planner::PlanEvent};
use chrono::TimeDelta;
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
    /// Life of added reservations (the server default already filled in).
    pub duration: TimeDelta,
    /// Idempotency key, if the producer gave one.
    pub event_id: Option<String>,
    /// Workflow job id, if the producer gave one.
    pub job_id: Option<String>,
}

impl ScaleEvent {
    /// Validates a wire event; missing or zero durations become `default_duration`.
    pub fn from_pb(e: pb::ScaleEvent, default_duration: TimeDelta) -> Result<Self, FieldError> {
        let pb::ScaleEvent {
            namespace,
            name,
            amount,
            duration,
            event_id,
            job_id,
        } = e;
        let key = validate_target(namespace, name)?;
        if amount.unsigned_abs() > MAX_AMOUNT.unsigned_abs() {
            return Err(FieldError::new(
                "amount",
                format!("must be between -{MAX_AMOUNT} and {MAX_AMOUNT}, got {amount}"),
            ));
        }
        let duration = match duration {
            None => default_duration,
            Some(d) => {
                let d = duration_from_pb(&d)?;
                if d.is_zero() { default_duration } else { d }
            }
        };
        for (field, id) in [("event_id", &event_id), ("job_id", &job_id)] {
            if id.len() > MAX_ID_LEN {
                return Err(FieldError::new(
                    field,
                    format!("at most {MAX_ID_LEN} bytes, got {}", id.len()),
                ));
            }
        }
        if !job_id.is_empty() && amount.abs() != 1 {
            return Err(FieldError::new(
                "amount",
                format!("must be 1 or -1 for an event with a job_id, got {amount}"),
            ));
        }
        Ok(Self {
            key,
            amount,
            duration,
            event_id: non_empty(event_id),
            job_id: non_empty(job_id),
        })
    }

    /// What the planner needs of this event.
    pub fn plan_event(&self) -> PlanEvent {
        PlanEvent {
            amount: i64::from(self.amount),
            duration: self.duration,
            job: self.job_id.as_deref().map(Arc::from),
        }
    }
}

/// `None` for an empty string (proto3's "unset").
pub(crate) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn duration_from_pb(d: &prost_types::Duration) -> Result<TimeDelta, FieldError> {
    let invalid = |msg: String| FieldError::new("duration", msg);
    if d.seconds < 0 || d.nanos < 0 {
        return Err(invalid(format!(
            "must not be negative, got {}s {}ns",
            d.seconds, d.nanos
        )));
    }
    if d.nanos >= 1_000_000_000 {
        return Err(invalid(format!("nanos must be below 1e9, got {}", d.nanos)));
    }
    let delta = TimeDelta::try_seconds(d.seconds)
        .and_then(|s| s.checked_add(&TimeDelta::nanoseconds(i64::from(d.nanos))))
        .filter(|t| *t <= MAX_DURATION)
        .ok_or_else(|| {
            invalid(format!(
                "must be at most 7 days (604800s), got {}s",
                d.seconds
            ))
        })?;
    Ok(delta)
}

/// Validates a namespace (DNS-1123 label) and name (DNS-1123 subdomain) pair.
pub fn validate_target(namespace: String, name: String) -> Result<HraKey, FieldError> {
    validate_namespace(&namespace)?;
    if let Err(why) = check_dns1123_subdomain(&name) {
        return Err(FieldError::new(
            "name",
            format!("must be a DNS-1123 subdomain ({why}), got {name:?}"),
        ));
    }
    Ok(HraKey { namespace, name })
}

/// Validates a namespace (DNS-1123 label), naming the `namespace` field.
pub fn validate_namespace(namespace: &str) -> Result<(), FieldError> {
    check_dns1123_label(namespace).map_err(|why| {
        FieldError::new(
            "namespace",
            format!("must be a DNS-1123 label ({why}), got {namespace:?}"),
        )
    })
}

/// Checks a DNS-1123 label: 1–63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn check_dns1123_label(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > 63 {
        return Err("at most 63 characters");
    }
    let bytes = s.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.iter().all(|&b| alnum(b) || b == b'-') {
        return Err("only lowercase letters, digits and '-'");
    }
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err("must start and end with a lowercase letter or digit");
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain: at most 253 characters of dot-separated labels.
pub fn check_dns1123_subdomain(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > 253 {
        return Err("at most 253 characters");
    }
    s.split('.').try_for_each(|part| {
        check_dns1123_label(part).map_err(|_| {
            "lowercase letters, digits, '-' and '.', each part starting and ending alphanumeric"
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(namespace: &str, name: &str, amount: i32) -> pb::ScaleEvent {
        pb::ScaleEvent {
            namespace: namespace.into(),
            name: name.into(),
            amount,
            ..Default::default()
        }
    }

    fn dur(seconds: i64, nanos: i32) -> Option<prost_types::Duration> {
        Some(prost_types::Duration { seconds, nanos })
    }

    const DEFAULT: TimeDelta = TimeDelta::minutes(10);

    fn field_of(e: pb::ScaleEvent) -> String {
        ScaleEvent::from_pb(e, DEFAULT).unwrap_err().field
    }

    #[test]
    fn accepts_a_good_event_and_fills_the_default_duration() {
        let e = ScaleEvent::from_pb(event("runners", "linux.x64-1", 1), DEFAULT).unwrap();
        assert_eq!(e.key, HraKey::new("runners", "linux.x64-1"));
        assert_eq!(e.duration, DEFAULT);
        assert_eq!(e.event_id, None);
        let zero = pb::ScaleEvent {
            duration: dur(0, 0),
            ..event("a", "b", -1)
        };
        assert_eq!(
            ScaleEvent::from_pb(zero, DEFAULT).unwrap().duration,
            DEFAULT
        );
        let given = pb::ScaleEvent {
            duration: dur(90, 500_000_000),
            event_id: "d1".into(),
            ..event("a", "b", 0)
        };
        let e = ScaleEvent::from_pb(given, DEFAULT).unwrap();
        assert_eq!(e.duration, TimeDelta::milliseconds(90_500));
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
        assert!(
            ScaleEvent::from_pb(event("ok", &format!("{}.b", "x".repeat(63)), 1), DEFAULT).is_ok()
        );
    }

    #[test]
    fn rejects_out_of_range_amounts_and_durations() {
        assert_eq!(field_of(event("a", "b", 1001)), "amount");
        assert_eq!(field_of(event("a", "b", -1001)), "amount");
        assert_eq!(field_of(event("a", "b", i32::MIN)), "amount");
        assert!(ScaleEvent::from_pb(event("a", "b", -1000), DEFAULT).is_ok());
        for d in [
            dur(-1, 0),
            dur(0, -1),
            dur(604_800, 1),
            dur(i64::MAX, 0),
            dur(1, 1_000_000_000),
        ] {
            let e = pb::ScaleEvent {
                duration: d,
                ..event("a", "b", 1)
            };
            assert_eq!(field_of(e), "duration", "{d:?}");
        }
        let week = pb::ScaleEvent {
            duration: dur(604_800, 0),
            ..event("a", "b", 1)
        };
        assert!(ScaleEvent::from_pb(week, DEFAULT).is_ok());
    }

    #[test]
    fn job_events_must_be_plus_or_minus_one() {
        for amount in [0, 2, -3] {
            let e = pb::ScaleEvent {
                job_id: "42".into(),
                ..event("a", "b", amount)
            };
            assert_eq!(field_of(e), "amount", "{amount}");
        }
        let e = pb::ScaleEvent {
            job_id: "42".into(),
            ..event("a", "b", -1)
        };
        let e = ScaleEvent::from_pb(e, DEFAULT).unwrap();
        assert_eq!(e.plan_event().job.as_deref(), Some("42"));
        let long = pb::ScaleEvent {
            event_id: "x".repeat(257),
            ..event("a", "b", 1)
        };
        assert_eq!(field_of(long), "event_id");
    }

    #[test]
    fn publish_index_prefixes_the_field() {
        let err = ScaleEvent::from_pb(event("a", "B", 1), DEFAULT)
            .unwrap_err()
            .at_index(3);
        assert_eq!(err.field, "events[3].name");
        assert!(
            err.to_string()
                .starts_with("events[3].name: must be a DNS-1123 subdomain")
        );
    }
}
