use super::*;
use chrono::{TimeDelta, TimeZone};

/// Monday 2026-11-02 00:00 UTC.
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
}

fn at(days: i64, hours: i64, minutes: i64) -> DateTime<Utc> {
    monday() + TimeDelta::days(days) + TimeDelta::hours(hours) + TimeDelta::minutes(minutes)
}

#[test]
fn an_empty_profile_expects_nothing() {
    let mut p = Profile::new();
    assert_eq!(p.expected(monday(), 3), Expected::default());
}

#[test]
fn an_hourly_cron_is_expected_after_three_hours() {
    let mut p = Profile::new();
    for hour in 0..2 {
        for _ in 0..12 {
            p.observe(at(0, hour, 5));
        }
    }
    // Two hours are not yet a pattern.
    assert_eq!(p.expected(at(0, 2, 4), 2).periodic, 0.0);
    for _ in 0..12 {
        p.observe(at(0, 2, 5));
    }
    let e = p.expected(at(0, 3, 4), 2);
    assert_eq!(e.periodic, 12.0);
    // Not at other minutes.
    assert_eq!(p.expected(at(0, 3, 20), 2).periodic, 0.0);
    // Jobs already arrived this hour are not expected again.
    for _ in 0..5 {
        p.observe(at(0, 3, 5));
    }
    assert_eq!(p.expected(at(0, 3, 5), 1).periodic, 7.0);
    // A missed hour breaks the pattern.
    assert_eq!(p.expected(at(0, 5, 4), 2).periodic, 0.0);
}

#[test]
fn office_hours_are_a_usual_rate_once_a_week_has_passed() {
    let mut p = Profile::new();
    // Weekdays 9:00-17:00, two jobs a minute (evenly, so the test is exact).
    for day in 0..5 {
        for minute in 9 * 60..17 * 60 {
            p.observe(at(day, 0, minute));
            p.observe(at(day, 0, minute));
        }
    }
    let next_monday = |h, m| at(7, h, m);
    let busy = p.expected(next_monday(10, 0), 2);
    assert!((busy.random - 4.0).abs() < 1e-6, "{busy:?}");
    assert_eq!(busy.periodic, 0.0);
    // Saturday and a Monday night expect nothing, though the days before were busy.
    assert_eq!(p.expected(at(12, 10, 0), 2).random, 0.0);
    assert_eq!(p.expected(next_monday(3, 0), 2).random, 0.0);
    // At the edge of the hours the rate ramps: half of the neighbours are busy.
    let edge = p.expected(next_monday(9, 0), 1).random;
    assert!(edge > 0.5 && edge < 2.0, "{edge}");
}

#[test]
fn before_a_week_the_day_profile_stands_in() {
    let mut p = Profile::new();
    for minute in 9 * 60..17 * 60 {
        p.observe(at(0, 0, minute));
    }
    let tuesday = p.expected(at(1, 12, 0), 1);
    assert!((tuesday.random - 1.0).abs() < 1e-6, "{tuesday:?}");
}

#[test]
fn a_weekly_batch_is_fixed_demand_and_noise_is_not() {
    let mut p = Profile::new();
    // Thirty jobs every Monday at 02:00, and a busy hour (two a minute) with one minute of
    // five.
    for _ in 0..30 {
        p.observe(at(0, 2, 0));
    }
    for minute in 0..60 {
        p.observe(at(1, 10, minute));
        p.observe(at(1, 10, minute));
    }
    for _ in 0..3 {
        p.observe(at(1, 10, 30));
    }
    let batch = p.expected(at(7, 1, 59), 2);
    assert!((batch.periodic - 30.0).abs() < 1e-6, "{batch:?}");
    // Those that came already are not expected again.
    for _ in 0..25 {
        p.observe(at(7, 2, 0));
    }
    let rest = p.expected(at(7, 2, 0), 1);
    assert!((rest.periodic - 5.0).abs() < 1e-6, "{rest:?}");
    let noisy = p.expected(at(8, 10, 30), 1);
    assert_eq!(noisy.periodic, 0.0, "{noisy:?}");
}

#[test]
fn older_weeks_count_less() {
    let mut p = Profile::new();
    for _ in 0..10 {
        p.observe(at(0, 2, 0));
    }
    // The next week has none at that minute; the week after expects less.
    p.advance(at(7, 0, 0));
    p.observe(at(7, 3, 0));
    let e = p.expected(at(14, 2, 0), 1);
    assert!(
        (e.periodic - 10.0 * f64::from(WEEK_DECAY)).abs() < 1e-4,
        "{e:?}"
    );
}

#[test]
fn late_arrivals_count_in_their_own_hour() {
    let mut p = Profile::new();
    // The newest hour first, then the two before it (deliveries out of order).
    for hour in [2, 0, 1] {
        for _ in 0..3 {
            p.observe(at(0, hour, 5));
        }
    }
    assert_eq!(p.expected(at(0, 3, 4), 2).periodic, 3.0);
}

#[test]
fn a_profile_read_back_from_its_annotation_expects_the_same() {
    let mut p = Profile::new();
    for day in 0..8 {
        for hour in 0..24 {
            for _ in 0..12 {
                p.observe(at(day, hour, 5));
            }
        }
        if day % 7 < 5 {
            for minute in (9 * 60..17 * 60).step_by(2) {
                p.observe(at(day, 0, minute));
                p.observe(at(day, 0, minute + 1));
                p.observe(at(day, 0, minute + 1));
            }
        }
    }
    let value = p.encode();
    assert!(value.starts_with("p1:"));
    assert!(value.len() < 8 * 1024, "{} bytes", value.len());
    let mut back = Profile::decode(&value).unwrap();
    assert_eq!(back.encode(), value, "stable");
    for (d, h, m) in [(8, 10, 4), (8, 3, 4), (12, 11, 30), (8, 9, 0)] {
        let (a, b) = (p.expected(at(d, h, m), 2), back.expected(at(d, h, m), 2));
        assert!((a.periodic - b.periodic).abs() < 0.05, "{a:?} {b:?}");
        assert!((a.random - b.random).abs() < 0.05, "{a:?} {b:?}");
    }
}

#[test]
fn garbage_is_refused_not_trusted() {
    assert!(Profile::decode("z1:AAAA").is_err());
    assert!(Profile::decode("p1:!!").is_err());
    let mut p = Profile::new();
    p.observe(at(0, 1, 5));
    let good = p.encode();
    assert!(Profile::decode(&good[..good.len() - 2]).is_err());
}
