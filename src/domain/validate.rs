//! Field validation shared by every request: Kubernetes names, and the error that names the
//! field at fault.

/// A field of a request that failed validation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Name of the field as in the proto (`namespace`, `duration`, …).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// Prefixes the field with the event's index in a `Publish` stream: `events[3].amount`.
    pub fn at_index(self, index: u64) -> Self {
        Self {
            field: format!("events[{index}].{}", self.field),
            message: self.message,
        }
    }
}

/// Most characters of a bad value an error message quotes.
pub const QUOTED_CHARS: usize = 128;

/// A bad value as an error message quotes it: whole (debug-quoted) up to [`QUOTED_CHARS`]
/// characters, else its first [`QUOTED_CHARS`] and its length, so that a huge value never
/// makes a huge message (a client's metadata limit would turn INVALID_ARGUMENT into
/// RESOURCE_EXHAUSTED).
pub fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTED_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!(
            "{:?}… ({} characters)",
            &value[..cut],
            value.chars().count()
        ),
    }
}

/// Validates a namespace (DNS-1123 label), naming the `namespace` field.
pub fn validate_namespace(namespace: &str) -> Result<(), FieldError> {
    check_dns1123_label(namespace).map_err(|why| {
        FieldError::new(
            "namespace",
            format!("must be a DNS-1123 label ({why}), got {}", quote(namespace)),
        )
    })
}

/// Validates an HRA name (DNS-1123 subdomain), naming the `name` field.
pub fn validate_name(name: &str) -> Result<(), FieldError> {
    check_dns1123_subdomain(name).map_err(|why| {
        FieldError::new(
            "name",
            format!("must be a DNS-1123 subdomain ({why}), got {}", quote(name)),
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

/// Checks a repository's full name as GitHub spells them, `OWNER/REPO`: an owner of letters,
/// digits and `-` (at most 39), a repository of letters, digits, `-`, `_` and `.` (at most
/// 100, not `.` or `..`). Anything else could not be a path segment of a REST API URL.
pub fn check_repository(s: &str) -> Result<(), &'static str> {
    let Some((owner, repo)) = s.split_once('/') else {
        return Err("no '/'");
    };
    if owner.is_empty() || owner.len() > 39 {
        return Err("the owner must have 1 to 39 characters");
    }
    if !owner
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("the owner has only letters, digits and '-'");
    }
    if repo.is_empty() || repo.len() > 100 {
        return Err("the repository must have 1 to 100 characters");
    }
    let repo_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if !repo.bytes().all(repo_char) || repo == "." || repo == ".." {
        return Err("the repository has only letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// The earliest instant a job's timestamp may name (GitHub did not exist before 2008).
pub fn earliest_job_time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_199_145_600, 0).unwrap_or_default()
}

/// How far ahead of our clock a job's timestamp may be (clock skew, not a typo).
pub const MOST_AHEAD: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Checks a job's timestamp: not before 2008, at most [`MOST_AHEAD`] after `now`.
pub fn check_job_time(
    field: &str,
    at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), FieldError> {
    use chrono::SecondsFormat::Secs;
    if at < earliest_job_time() {
        return Err(FieldError::new(
            field,
            format!(
                "must not be before 2008-01-01, got {}",
                at.to_rfc3339_opts(Secs, true)
            ),
        ));
    }
    if now
        .checked_add_signed(MOST_AHEAD)
        .is_some_and(|latest| at > latest)
    {
        return Err(FieldError::new(
            field,
            format!(
                "must not be more than 1h after the server's clock ({}), got {}",
                now.to_rfc3339_opts(Secs, true),
                at.to_rfc3339_opts(Secs, true)
            ),
        ));
    }
    Ok(())
}
