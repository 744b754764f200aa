//! Durations as Kubernetes writes them (Go's `time.ParseDuration`, e.g. `30m`, `1h30m`,
//! `1.5h`, `300ms`): the form of an HRA trigger's `duration`.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// The latest instant a Kubernetes timestamp can hold (RFC 3339 has four-digit years):
/// `9999-12-31T23:59:59Z`.
pub fn latest_time() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at + life`, saturating at [`latest_time`] (never overflowing, never wrapping to "now");
/// a negative `life` counts as zero.
pub fn saturating_add(at: DateTime<Utc>, life: TimeDelta) -> DateTime<Utc> {
    let latest = latest_time();
    at.checked_add_signed(life.max(TimeDelta::zero()))
        .map_or(latest, |t| t.min(latest))
}

/// A standard duration as a chrono one, saturating at [`TimeDelta::MAX`].
pub fn saturating_delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// A duration in whole seconds as people write a trigger's: `1h30m`, `45m`, `1m30s`, `0s`
/// (what [`parse_go_duration`] reads back).
pub fn format_go_duration(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

/// A string that is not a Go duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected e.g. 30m, 1h30m, 1.5h or 300ms")]
pub struct DurationError(pub String);

/// Parses a Go duration: an optional sign, then one or more decimal numbers (with an optional
/// fraction) each followed by a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`); `0` alone is zero.
pub fn parse_go_duration(text: &str) -> Result<TimeDelta, DurationError> {
    let invalid = || DurationError(text.to_owned());
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(TimeDelta::zero());
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total_nanos: i128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let per_unit: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(invalid()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut nanos = whole.checked_mul(per_unit).ok_or_else(invalid)?;
        let mut scale = per_unit;
        for digit in fraction.chars() {
            scale /= 10;
            nanos += i128::from(digit.to_digit(10).ok_or_else(invalid)?) * scale;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(invalid)?;
        rest = tail;
    }
    let nanos = i64::try_from(total_nanos).map_err(|_| invalid())?;
    let delta = TimeDelta::nanoseconds(nanos);
    Ok(if negative { -delta } else { delta })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_kubernetes_writes() {
        let cases = [
            ("30m", TimeDelta::minutes(30)),
            ("1h30m", TimeDelta::minutes(90)),
            ("1.5h", TimeDelta::minutes(90)),
            ("300ms", TimeDelta::milliseconds(300)),
            (
                "2h45m10.5s",
                TimeDelta::milliseconds(((2 * 60 + 45) * 60 + 10) * 1000 + 500),
            ),
            ("0", TimeDelta::zero()),
            ("0s", TimeDelta::zero()),
            ("-5m", TimeDelta::minutes(-5)),
            ("10µs", TimeDelta::microseconds(10)),
            (".5s", TimeDelta::milliseconds(500)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_anything_else() {
        for text in [
            "",
            "30",
            "m",
            "1d",
            "30 m",
            "1h-5m",
            "h1",
            ".s",
            "9999999999999h",
        ] {
            assert!(parse_go_duration(text).is_err(), "{text:?}");
        }
    }
}
