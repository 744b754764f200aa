//! `replay --plot FILE`: an SVG of runners and waiting jobs over the measured span (all HRAs),
//! one panel each, the most of each stretch drawn so that no peak is lost.

use super::{jobs::Ms, report::Sample};
use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const PANEL: f64 = 180.0;
const LEFT: f64 = 56.0;
const TOP: f64 = 36.0;
const GAP: f64 = 44.0;
/// A panel's label, colour and value.
type Panel = (&'static str, &'static str, fn(&Sample) -> u64);

/// Most points drawn per line.
const POINTS: usize = 960;

/// The SVG document for `samples`, titled `title`.
pub fn svg(title: &str, samples: &[Sample]) -> String {
    let mut out = String::new();
    let height = TOP + 2.0 * PANEL + GAP + 40.0;
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="20" font-size="14">{}</text>"#,
        escape(title)
    );
    let (first, last) = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => (a.at, b.at.max(a.at + 1)),
        _ => (0, 1),
    };
    let panels: [Panel; 2] = [
        ("runners", "#1f77b4", |s| s.runners),
        ("waiting jobs", "#d62728", |s| s.waiting),
    ];
    for (i, (label, color, value)) in panels.into_iter().enumerate() {
        let top = TOP + i as f64 * (PANEL + GAP);
        let points = peaks(samples, value);
        let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
        let x = |t: Ms| LEFT + (t - first) as f64 / (last - first) as f64 * (WIDTH - LEFT - 16.0);
        let y = |v: u64| top + PANEL - v as f64 / max * PANEL;
        let _ = write!(
            out,
            r##"<rect x="{LEFT}" y="{top}" width="{}" height="{PANEL}" fill="none" stroke="#ccc"/><text x="{LEFT}" y="{}">{label} (most {max})</text>"##,
            WIDTH - LEFT - 16.0,
            top - 6.0
        );
        // A tick per day.
        let mut day = first - first.rem_euclid(86_400_000) + 86_400_000;
        while day < last {
            let _ = write!(
                out,
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1}" stroke="#eee"/>"##,
                x(day),
                top + PANEL
            );
            day += 86_400_000;
        }
        let line: Vec<String> = points
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1" points="{}"/>"#,
            line.join(" ")
        );
    }
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="{}">one vertical line per day (UTC)</text></svg>"#,
        height - 12.0
    );
    out
}

/// At most [`POINTS`] points: the most of each stretch of samples.
fn peaks(samples: &[Sample], value: fn(&Sample) -> u64) -> Vec<(Ms, u64)> {
    let per = samples.len().div_ceil(POINTS).max(1);
    samples
        .chunks(per)
        .map(|c| (c[0].at, c.iter().map(value).max().unwrap_or(0)))
        .collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_panels_and_keeps_peaks() {
        let samples: Vec<Sample> = (0..5000)
            .map(|i| Sample {
                at: i * 60_000,
                waiting: u64::from(i == 1234) * 40,
                runners: 3,
            })
            .collect();
        assert_eq!(
            peaks(&samples, |s| s.waiting).iter().map(|p| p.1).max(),
            Some(40)
        );
        assert!(peaks(&samples, |s| s.runners).len() <= POINTS);
        let doc = svg("a <b>", &samples);
        assert!(doc.starts_with("<svg") && doc.ends_with("</svg>"));
        assert_eq!(doc.matches("<polyline").count(), 2);
        assert!(doc.contains("a &lt;b&gt;") && doc.contains("waiting jobs (most 40)"));
    }
}
