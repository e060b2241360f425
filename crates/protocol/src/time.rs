//! Timestamps as the XML protocols carry them: ISO 8601 in UTC (`2026-11-23T10:00:00.000Z`).

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, in the form AWS writes timestamps in EC2 and query responses.
pub fn now_iso() -> String {
    iso(OffsetDateTime::now_utc())
}

/// `seconds` from now (an expiry time, say), in the same form.
pub fn later_iso(seconds: i64) -> String {
    iso(OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
}

/// Now as a Unix time, in seconds: what expiries are kept as.
pub fn now_unix() -> u64 {
    OffsetDateTime::now_utc().unix_timestamp().max(0) as u64
}

/// A Unix time to the second, as IMDS and STS write expiries: `2026-11-23T16:00:00Z`.
pub fn iso_at_unix(secs: u64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(secs as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub fn iso(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Reads an input timestamp (ISO 8601 or epoch seconds) into the canonical ISO form.
pub fn parse_timestamp(raw: &str) -> Option<String> {
    if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(iso(t));
    }
    let secs: f64 = raw.parse().ok()?;
    let t = OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128).ok()?;
    Some(iso(t))
}

/// The Unix time (seconds) of an ISO 8601 timestamp.
pub fn unix_of_iso(raw: &str) -> Option<u64> {
    let t = OffsetDateTime::parse(raw, &Rfc3339).ok()?;
    Some(t.unix_timestamp().max(0) as u64)
}

/// Output text of a timestamp value: strings pass through, numbers are epoch seconds.
pub fn format_timestamp(v: &Value) -> String {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(|s| OffsetDateTime::from_unix_timestamp_nanos((s * 1e9) as i128).ok())
            .map(iso)
            .unwrap_or_default(),
        other => crate::xml::scalar_text(other).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_iso_and_epoch() {
        assert_eq!(
            super::parse_timestamp("2026-01-02T03:04:05Z").unwrap(),
            "2026-01-02T03:04:05.000Z"
        );
        assert_eq!(
            super::parse_timestamp("0").unwrap(),
            "1970-01-01T00:00:00.000Z"
        );
        assert!(super::parse_timestamp("yesterday").is_none());
    }
}
