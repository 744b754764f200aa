//! What GitHub's REST answers say beyond their bodies: the next page's cursor in `Link`, and
//! when the rate limits let us call again.

use chrono::{DateTime, TimeDelta, Utc};

/// The `cursor` of the `rel="next"` link of a `Link` header, if there is one.
pub fn next_cursor(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        if !is_next {
            return None;
        }
        let url = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let (_, query) = url.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == "cursor").then(|| percent_decode(v))
        })
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rate-limit headers of one answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateHeaders {
    /// `x-ratelimit-remaining`.
    pub remaining: Option<u64>,
    /// `x-ratelimit-reset`, epoch seconds.
    pub reset: Option<i64>,
    /// `retry-after`, seconds.
    pub retry_after: Option<u64>,
}

/// Until when every GitHub call waits after an answer with `status` and `headers` (and a body
/// that does or does not speak of a rate limit), received at `now`: as GitHub's documentation
/// says, `retry-after` on a 403/429 (a secondary limit); `x-ratelimit-remaining: 0` until
/// `x-ratelimit-reset` (the primary limit used up); a 429, or a 403 whose body speaks of a
/// rate limit, with neither header: a minute. Else `None` (a 403 is then a permission).
pub fn pause_until(
    status: u16,
    headers: RateHeaders,
    body_says_rate_limit: bool,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let limited = status == 429 || (status == 403 && body_says_rate_limit);
    if matches!(status, 403 | 429)
        && let Some(secs) = headers.retry_after
    {
        let secs = i64::try_from(secs).unwrap_or(i64::MAX).min(86_400);
        return Some(now + TimeDelta::seconds(secs));
    }
    if headers.remaining == Some(0) {
        let reset = headers.reset.and_then(|s| DateTime::from_timestamp(s, 0));
        return Some(reset.map_or(now + TimeDelta::minutes(1), |at| at.max(now)));
    }
    limited.then(|| now + TimeDelta::minutes(1))
}

/// `s` as a query value.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_cursor() {
        let link = r#"<https://api.github.com/orgs/o/hooks/1/deliveries?per_page=100&cursor=v1_1232%3D>; rel="next", <https://api.github.com/orgs/o/hooks/1/deliveries?per_page=100>; rel="first""#;
        assert_eq!(next_cursor(link).as_deref(), Some("v1_1232="));
        let last = r#"<https://api.github.com/x?cursor=v1_9>; rel="prev""#;
        assert_eq!(next_cursor(last), None);
        assert_eq!(next_cursor(""), None);
        assert_eq!(next_cursor("garbage; rel=\"next\""), None);
    }

    #[test]
    fn pauses_on_exhausted_or_secondary_limits_only() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let h = |remaining, reset, retry_after| RateHeaders {
            remaining,
            reset,
            retry_after,
        };
        let reset = 1_800_000_600;
        let at_reset = DateTime::from_timestamp(reset, 0);
        let minute = Some(now + TimeDelta::minutes(1));
        let p = |status, headers, says| pause_until(status, headers, says, now);
        assert_eq!(p(200, h(Some(10), Some(reset), None), false), None);
        assert_eq!(p(200, h(Some(0), Some(reset), None), false), at_reset);
        assert_eq!(p(403, h(Some(0), Some(reset), None), true), at_reset);
        assert_eq!(
            p(403, h(Some(10), Some(reset), Some(30)), true),
            Some(now + TimeDelta::seconds(30))
        );
        assert_eq!(p(429, h(None, None, None), false), minute);
        assert_eq!(p(403, h(Some(10), Some(reset), None), true), minute);
        // A permission error carries the headers too: no pause.
        assert_eq!(p(403, h(Some(4999), Some(reset), None), false), None);
        // A reset in the past does not pause into the past.
        assert_eq!(p(200, h(Some(0), Some(0), None), false), Some(now));
    }
}
