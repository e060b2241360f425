//! The `Condition` element: operators, their typed values, and how they meet the request.
//!
//! Semantics, from "IAM JSON policy elements: Condition operators" and "Conditions with
//! multiple context keys or values":
//! - Several operators in one `Condition`, and several keys under one operator, are AND'ed
//!   (the statement keeps one [`Condition`] per operator/key pair and requires all of them).
//! - Several values for one key are OR'ed; for the negated operators (`StringNotEquals`,
//!   `NotIpAddress`, `ArnNotLike`...) they are NOR'ed: the condition holds when the request
//!   value matches none of them.
//! - A key missing from the request makes a condition false, except that negated operators
//!   are then true, `...IfExists` is true, and `Null` tests presence itself.
//! - `ForAllValues:` holds when every request value matches (vacuously true for a missing or
//!   empty key); `ForAnyValue:` when at least one does (false for a missing or empty key).
//!   With a negated operator "matches" means "matches none of the policy values", per value.
//! - Key names are case-insensitive; values are case-sensitive except under the
//!   `...IgnoreCase` operators, `Bool`, and `Null`'s `true`/`false`.
//! - Policy variables work in string, ARN and `Bool` values only.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::glob::{ArnPattern, ArnView, Glob};
use crate::request::{Context, lookup};
use crate::variables::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    /// `request <op> policy`, as the operator names read ("key is less than value").
    fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Cmp::Eq => request == policy,
            Cmp::Lt => request < policy,
            Cmp::Le => request <= policy,
            Cmp::Gt => request > policy,
            Cmp::Ge => request >= policy,
        }
    }
}

/// The comparison an operator makes, before negation, qualifiers and `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    /// `ArnEquals` and `ArnLike` "behave identically".
    Arn,
    Null,
}

impl Kind {
    fn allows_variables(self) -> bool {
        matches!(
            self,
            Kind::StringEquals
                | Kind::StringEqualsIgnoreCase
                | Kind::StringLike
                | Kind::Bool
                | Kind::Arn
        )
    }
}

/// The set qualifier in front of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

/// A parsed operator name such as `ForAllValues:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    kind: Kind,
    negated: bool,
    qualifier: Qualifier,
    if_exists: bool,
}

impl Operator {
    /// Recognises an operator name, or `None` if IAM does not know it. Names are matched
    /// ignoring ASCII case, which accepts every policy IAM accepts.
    pub fn parse(name: &str) -> Option<Self> {
        let mut rest = name;
        let mut qualifier = Qualifier::None;
        for (prefix, q) in [
            ("forallvalues:", Qualifier::ForAllValues),
            ("foranyvalue:", Qualifier::ForAnyValue),
        ] {
            if rest.len() >= prefix.len() && rest[..prefix.len()].eq_ignore_ascii_case(prefix) {
                rest = &rest[prefix.len()..];
                qualifier = q;
                break;
            }
        }
        let mut if_exists = false;
        let suffix = "ifexists";
        if rest.len() > suffix.len()
            && rest.is_char_boundary(rest.len() - suffix.len())
            && rest[rest.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        {
            rest = &rest[..rest.len() - suffix.len()];
            if_exists = true;
        }
        use Cmp::*;
        let (kind, negated) = match rest.to_ascii_lowercase().as_str() {
            "stringequals" => (Kind::StringEquals, false),
            "stringnotequals" => (Kind::StringEquals, true),
            "stringequalsignorecase" => (Kind::StringEqualsIgnoreCase, false),
            "stringnotequalsignorecase" => (Kind::StringEqualsIgnoreCase, true),
            "stringlike" => (Kind::StringLike, false),
            "stringnotlike" => (Kind::StringLike, true),
            "numericequals" => (Kind::Numeric(Eq), false),
            "numericnotequals" => (Kind::Numeric(Eq), true),
            "numericlessthan" => (Kind::Numeric(Lt), false),
            "numericlessthanequals" => (Kind::Numeric(Le), false),
            "numericgreaterthan" => (Kind::Numeric(Gt), false),
            "numericgreaterthanequals" => (Kind::Numeric(Ge), false),
            "dateequals" => (Kind::Date(Eq), false),
            "datenotequals" => (Kind::Date(Eq), true),
            "datelessthan" => (Kind::Date(Lt), false),
            "datelessthanequals" => (Kind::Date(Le), false),
            "dategreaterthan" => (Kind::Date(Gt), false),
            "dategreaterthanequals" => (Kind::Date(Ge), false),
            "bool" => (Kind::Bool, false),
            "binaryequals" => (Kind::Binary, false),
            "ipaddress" => (Kind::Ip, false),
            "notipaddress" => (Kind::Ip, true),
            "arnequals" | "arnlike" => (Kind::Arn, false),
            "arnnotequals" | "arnnotlike" => (Kind::Arn, true),
            // `IfExists` changes nothing on `Null`, which already tests existence.
            "null" => (Kind::Null, false),
            _ => return None,
        };
        Some(Self {
            kind,
            negated,
            qualifier,
            if_exists,
        })
    }
}

/// A policy value, compiled for its operator.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// `StringEquals`; `Bool` (lowercased); `BinaryEquals` when not valid base64.
    Text(String),
    /// `StringEqualsIgnoreCase`, lowercased.
    Lower(String),
    Glob(Glob),
    Arn(ArnPattern),
    Number(f64),
    /// Nanoseconds since the Unix epoch.
    Date(i128),
    Ip(IpNet),
    Bytes(Vec<u8>),
    /// `Null`: `true` asks for the key to be absent.
    Null(bool),
    /// A value holding policy variables, compiled when the request is known.
    Template(Template),
    /// A value of the wrong type for its operator (`"ten"` under `NumericEquals`): it can
    /// never match, which is what such a value does in IAM.
    Never,
}

/// One operator applied to one key: the unit the statement AND's together.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    op: Operator,
    /// Lowercased, for lookup.
    key: String,
    /// As written, for reporting missing context keys.
    name: String,
    values: Vec<Value>,
    has_templates: bool,
}

/// Why a condition value could not be compiled; the caller turns it into IAM's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueError {
    /// A date IAM's legacy parser cannot read, which IAM reports as a legacy-parsing
    /// failure ([`legacy_date_ok`]).
    BadDate,
}

impl Condition {
    /// Compiles `op` applied to `key` with its policy `values`. `variables` is whether the
    /// policy version has policy variables.
    pub fn new(
        op: Operator,
        key: &str,
        values: &[String],
        variables: bool,
    ) -> Result<Self, ValueError> {
        let values = values
            .iter()
            .map(|raw| compile_value(op, raw, variables))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            op,
            key: key.to_lowercase(),
            name: key.to_string(),
            has_templates: values.iter().any(|v| matches!(v, Value::Template(_))),
            values,
        })
    }

    /// Whether the condition holds for `ctx`. Keys it needed but `ctx` lacks (the key itself,
    /// or a variable in a value) are added to `missing`.
    pub fn eval<'p>(&'p self, ctx: &Context, missing: &mut Vec<&'p str>) -> bool {
        let found = lookup(ctx, &self.key).filter(|v| !v.is_empty());
        if found.is_none() {
            missing.push(&self.name);
        }
        if self.op.kind == Kind::Null {
            return self
                .values
                .iter()
                .any(|v| matches!(v, Value::Null(absent) if *absent == found.is_none()));
        }
        let Some(request_values) = found else {
            return match self.op.qualifier {
                _ if self.op.if_exists => true,
                Qualifier::None => self.op.negated,
                Qualifier::ForAnyValue => false,
                Qualifier::ForAllValues => true,
            };
        };
        let resolved;
        let policy_values = if self.has_templates {
            resolved = self
                .values
                .iter()
                .map(|v| self.resolve(v, ctx, missing))
                .collect::<Vec<_>>();
            &resolved
        } else {
            &self.values
        };
        let hit = |rv: &String| self.matches_any(policy_values, rv) != self.op.negated;
        match self.op.qualifier {
            // Without a qualifier the negation applies to the whole comparison: a negated
            // operator holds when no request value matches any policy value.
            Qualifier::None => {
                request_values
                    .iter()
                    .any(|rv| self.matches_any(policy_values, rv))
                    != self.op.negated
            }
            Qualifier::ForAnyValue => request_values.iter().any(hit),
            Qualifier::ForAllValues => request_values.iter().all(hit),
        }
    }

    /// Substitutes a value's variables and compiles the result for the operator.
    fn resolve<'p>(&'p self, v: &'p Value, ctx: &Context, missing: &mut Vec<&'p str>) -> Value {
        let Value::Template(t) = v else {
            return v.clone();
        };
        match self.op.kind {
            Kind::StringLike => t.tokens(ctx, missing).map_or(Value::Never, |tokens| {
                Value::Glob(Glob::from_tokens(tokens, false))
            }),
            Kind::Arn => t.tokens(ctx, missing).map_or(Value::Never, |tokens| {
                Value::Arn(ArnPattern::from_tokens(tokens))
            }),
            Kind::StringEqualsIgnoreCase => t
                .text(ctx, missing)
                .map_or(Value::Never, |s| Value::Lower(s.to_lowercase())),
            Kind::Bool => t
                .text(ctx, missing)
                .map_or(Value::Never, |s| Value::Text(s.to_ascii_lowercase())),
            _ => t.text(ctx, missing).map_or(Value::Never, Value::Text),
        }
    }

    /// Whether request value `rv` matches at least one policy value. The request value is
    /// read once, in the operator's type, then compared with each policy value.
    fn matches_any(&self, policy: &[Value], rv: &str) -> bool {
        match self.op.kind {
            Kind::StringEquals => policy
                .iter()
                .any(|p| matches!(p, Value::Text(t) if t == rv)),
            Kind::StringEqualsIgnoreCase => policy
                .iter()
                .any(|p| matches!(p, Value::Lower(l) if eq_lowercased(l, rv))),
            Kind::StringLike => policy
                .iter()
                .any(|p| matches!(p, Value::Glob(g) if g.is_match(rv))),
            Kind::Bool => policy
                .iter()
                .any(|p| matches!(p, Value::Text(t) if t.eq_ignore_ascii_case(rv))),
            Kind::Arn => {
                let view = ArnView::new(rv);
                policy
                    .iter()
                    .any(|p| matches!(p, Value::Arn(a) if a.is_match(&view)))
            }
            Kind::Numeric(cmp) => match rv.trim().parse::<f64>() {
                Ok(r) => policy
                    .iter()
                    .any(|p| matches!(p, Value::Number(n) if cmp.holds(r, *n))),
                Err(_) => false,
            },
            Kind::Date(cmp) => match parse_date(rv) {
                Some(r) => policy
                    .iter()
                    .any(|p| matches!(p, Value::Date(d) if cmp.holds(r, *d))),
                None => false,
            },
            Kind::Ip => match parse_request_ip(rv) {
                Some(ip) => policy
                    .iter()
                    .any(|p| matches!(p, Value::Ip(net) if ip_in(net, ip))),
                None => false,
            },
            Kind::Binary => {
                let decoded = decode_base64(rv);
                policy.iter().any(|p| match (p, &decoded) {
                    (Value::Bytes(b), Some(d)) => b == d,
                    (Value::Text(t), _) => t == rv,
                    _ => false,
                })
            }
            Kind::Null => false,
        }
    }
}

fn compile_value(op: Operator, raw: &str, variables: bool) -> Result<Value, ValueError> {
    if variables
        && op.kind.allows_variables()
        && let Some(t) = Template::parse(raw)
    {
        return Ok(Value::Template(t));
    }
    Ok(match op.kind {
        Kind::StringEquals => Value::Text(raw.to_string()),
        Kind::StringEqualsIgnoreCase => Value::Lower(raw.to_lowercase()),
        Kind::StringLike => Value::Glob(Glob::new(raw)),
        Kind::Arn => Value::Arn(ArnPattern::new(raw)),
        Kind::Bool => Value::Text(raw.to_ascii_lowercase()),
        Kind::Numeric(_) => match raw.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Value::Number(n),
            _ => Value::Never,
        },
        // IAM takes whatever its legacy parser reads; one that names no instant kumori can
        // place (`01T`, a year before the calendar) never matches.
        Kind::Date(_) if !legacy_date_ok(raw) => return Err(ValueError::BadDate),
        Kind::Date(_) => parse_date(raw).map_or(Value::Never, Value::Date),
        Kind::Ip => parse_policy_ip(raw).map_or(Value::Never, Value::Ip),
        Kind::Binary => {
            decode_base64(raw).map_or_else(|| Value::Text(raw.to_string()), Value::Bytes)
        }
        Kind::Null => match raw.to_ascii_lowercase().as_str() {
            "true" => Value::Null(true),
            "false" => Value::Null(false),
            _ => Value::Never,
        },
    })
}

/// `lowered` (already lowercase) equals `s` once `s` is lowercased, without allocating.
fn eq_lowercased(lowered: &str, s: &str) -> bool {
    if lowered.is_ascii() && s.is_ascii() {
        lowered.eq_ignore_ascii_case(s)
    } else {
        lowered.chars().eq(s.chars().flat_map(char::to_lowercase))
    }
}

/// A CIDR, or a bare address meaning `/32` (IPv4) or `/128` (IPv6).
fn parse_policy_ip(raw: &str) -> Option<IpNet> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .ok()
        .or_else(|| raw.parse::<IpAddr>().ok().map(IpNet::from))
}

fn parse_request_ip(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<IpNet>().ok().map(|n| n.addr()))
}

/// Containment, also matching an IPv4-mapped IPv6 request address against IPv4 ranges.
fn ip_in(net: &IpNet, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpNet::V4(n), IpAddr::V6(v6)) => v6.to_ipv4_mapped().is_some_and(|v4| n.contains(&v4)),
        _ => net.contains(&ip),
    }
}

/// Decodes standard base64 (padding optional). `None` if `s` is not base64.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A single leftover 6-bit group cannot encode a byte.
    (bits < 6).then_some(out)
}

const NANOS: i128 = 1_000_000_000;

/// Whether IAM's legacy parser reads `s` as a date, as IAM is seen to answer (moto's
/// `policy_validation.py` records the probing): without a `-` or `T`, epoch seconds from 0
/// to 2^63 - 1; otherwise ISO 8601 read piece by piece, each piece checked only for its
/// range — a year from -292275054 to 292278993 (Joda-Time's), month 1 to 12, day 1 to 31,
/// hour 0 to 23, minute and second 0 to 59, a fraction of at most 999999999, and a zone of
/// `Z` or a sign and two digits of hours. What it refuses IAM reports as "The policy failed
/// legacy parsing". Laxer than [`parse_date`], which places a value in time.
pub(crate) fn legacy_date_ok(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    let within = |v: &str, lo: i128, hi: i128| int(v).is_some_and(|n| (lo..=hi).contains(&n));
    if !s.contains(['t', '-']) {
        // kumori also takes a fraction of a second, as it always has.
        let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
        return within(whole, 0, i128::from(i64::MAX)) && frac.bytes().all(|b| b.is_ascii_digit());
    }
    let (date, time) = s.split_once('t').unwrap_or((&s, ""));
    let (negative, date) = match date.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, date),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let year = int(parts[0]).map(|y| if negative { -y } else { y });
    if parts.len() > 3
        || !year.is_some_and(|y| (-292_275_054..=292_278_993).contains(&y))
        || parts.get(1).is_some_and(|m| !within(m, 1, 12))
        || parts.get(2).is_some_and(|d| !within(d, 1, 31))
    {
        return false;
    }
    // The zone: `Z`, or a sign and two digits of hours (what follows them goes unread).
    let clock = if let Some(clock) = time.strip_suffix('z') {
        clock
    } else if let Some(at) = time.find(['+', '-']) {
        let hours = time[at + 1..].split(':').next().unwrap_or_default();
        if hours.len() != 2 || !within(hours, 0, 23) {
            return false;
        }
        &time[..at]
    } else {
        time
    };
    let pieces: Vec<&str> = clock.split(':').collect();
    let (seconds, fraction) = match pieces.get(2).map(|s| s.split_once('.')) {
        Some(Some((s, f))) => (Some(s), Some(f)),
        Some(None) => (pieces.get(2).copied(), None),
        None => (None, None),
    };
    (pieces[0].is_empty() || within(pieces[0], 0, 23))
        && pieces.get(1).is_none_or(|m| within(m, 0, 59))
        && seconds.is_none_or(|s| within(s, 0, 59))
        && fraction.is_none_or(|f| within(f, 0, 999_999_999))
}

/// An integer as IAM's legacy parser reads one: an optional sign and at least one digit.
fn int(s: &str) -> Option<i128> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // More digits than an i128 holds is beyond every range IAM checks.
    s.parse().ok()
}

/// Reads a date the way the Date operators do: epoch seconds (`1700000000`, optionally with
/// a fraction), or one of the W3C ISO 8601 profiles — `YYYY`, `YYYY-MM`, `YYYY-MM-DD`,
/// `YYYY-MM-DDThh:mm[:ss[.s+]]` with an optional `Z` or `±hh:mm` zone (none means UTC).
/// Returns nanoseconds since the Unix epoch.
pub(crate) fn parse_date(s: &str) -> Option<i128> {
    let s = s.trim();
    // Like IAM's legacy parser, a value without a `-` or `T` is epoch time, so "2012" is
    // 2012 seconds after 1970, not the year 2012.
    if !s.contains(['-', 'T', 't']) {
        return parse_epoch(s);
    }
    let b = s.as_bytes();
    let mut p = 0usize;
    let year = digits(b, &mut p, 4)? as i32;
    let mut month = 1u8;
    let mut day = 1u8;
    if b.get(p) == Some(&b'-') {
        p += 1;
        month = digits(b, &mut p, 2)? as u8;
        if b.get(p) == Some(&b'-') {
            p += 1;
            day = digits(b, &mut p, 2)? as u8;
        }
    }
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    // Julian day number of 1970-01-01.
    let days = i128::from(date.to_julian_day() - 2_440_588);
    let mut secs = days * 86_400;
    let mut nanos = 0i128;
    if let Some(b'T' | b't') = b.get(p) {
        p += 1;
        let h = digits(b, &mut p, 2)?;
        if b.get(p) != Some(&b':') {
            return None;
        }
        p += 1;
        let m = digits(b, &mut p, 2)?;
        let mut sec = 0;
        if b.get(p) == Some(&b':') {
            p += 1;
            sec = digits(b, &mut p, 2)?;
            if b.get(p) == Some(&b'.') {
                p += 1;
                let start = p;
                while b.get(p).is_some_and(u8::is_ascii_digit) {
                    p += 1;
                }
                nanos = fraction_nanos(&s[start..p])?;
            }
        }
        if h > 23 || m > 59 || sec > 59 {
            return None;
        }
        secs += i128::from(h * 3600 + m * 60 + sec);
        match b.get(p) {
            None => {}
            Some(b'Z' | b'z') => p += 1,
            Some(&sign @ (b'+' | b'-')) => {
                p += 1;
                let oh = digits(b, &mut p, 2)?;
                if b.get(p) == Some(&b':') {
                    p += 1;
                }
                let om = if p < b.len() {
                    digits(b, &mut p, 2)?
                } else {
                    0
                };
                if oh > 23 || om > 59 {
                    return None;
                }
                let offset = i128::from(oh * 3600 + om * 60);
                // Local time minus its offset is UTC.
                secs += if sign == b'+' { -offset } else { offset };
            }
            _ => return None,
        }
    }
    (p == b.len()).then_some(secs * NANOS + nanos)
}

fn parse_epoch(s: &str) -> Option<i128> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|c| c.is_ascii_digit()) || whole.len() > 18 {
        return None;
    }
    let secs: i128 = whole.parse().ok()?;
    Some(secs * NANOS + fraction_nanos(frac)?)
}

/// The nanoseconds in a decimal fraction's digits (`"5"` is half a second).
fn fraction_nanos(frac: &str) -> Option<i128> {
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut n = 0i128;
    for (i, c) in frac.bytes().take(9).enumerate() {
        n += i128::from(c - b'0') * 10i128.pow(8 - i as u32);
    }
    Some(n)
}

/// Exactly `n` ASCII digits at `*p`.
fn digits(b: &[u8], p: &mut usize, n: usize) -> Option<u32> {
    let chunk = b.get(*p..*p + n)?;
    if !chunk.iter().all(u8::is_ascii_digit) {
        return None;
    }
    *p += n;
    Some(
        chunk
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &[&str])]) -> Context {
        pairs
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    /// Evaluates `op` on `key` with policy `values` against `c`.
    fn check(op: &str, key: &str, values: &[&str], c: &Context) -> bool {
        let op = Operator::parse(op).unwrap_or_else(|| panic!("unknown operator {op}"));
        let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        Condition::new(op, key, &values, true)
            .unwrap()
            .eval(c, &mut Vec::new())
    }

    #[test]
    fn operator_names() {
        for name in [
            "StringEquals",
            "ForAnyValue:StringLikeIfExists",
            "ForAllValues:NumericLessThanEquals",
            "DateGreaterThanEqualsIfExists",
            "ArnNotLike",
            "Null",
            "stringequals",
        ] {
            assert!(Operator::parse(name).is_some(), "{name}");
        }
        for name in [
            "StringEqual",
            "ForSomeValues:StringEquals",
            "IfExists",
            "Numeric",
            "",
        ] {
            assert!(Operator::parse(name).is_none(), "{name}");
        }
    }

    #[test]
    fn string_operators() {
        let c = ctx(&[("aws:username", &["JohnDoe"])]);
        assert!(check("StringEquals", "aws:username", &["JohnDoe"], &c));
        assert!(!check("StringEquals", "aws:username", &["johndoe"], &c));
        assert!(check(
            "StringEquals",
            "AWS:UserName",
            &["nobody", "JohnDoe"],
            &c
        ));
        assert!(check("StringNotEquals", "aws:username", &["johndoe"], &c));
        assert!(!check(
            "StringNotEquals",
            "aws:username",
            &["x", "JohnDoe"],
            &c
        ));
        assert!(check(
            "StringEqualsIgnoreCase",
            "aws:username",
            &["johndoe"],
            &c
        ));
        assert!(!check(
            "StringNotEqualsIgnoreCase",
            "aws:username",
            &["JOHNDOE"],
            &c
        ));
        assert!(check(
            "StringNotEqualsIgnoreCase",
            "aws:username",
            &["jane"],
            &c
        ));
        assert!(check("StringLike", "aws:username", &["John*"], &c));
        assert!(check("StringLike", "aws:username", &["J?hnD?e"], &c));
        assert!(!check("StringLike", "aws:username", &["john*"], &c));
        assert!(check("StringNotLike", "aws:username", &["jane*"], &c));
        assert!(!check("StringNotLike", "aws:username", &["*Doe"], &c));
        // StringEquals has no wildcards.
        assert!(!check("StringEquals", "aws:username", &["John*"], &c));
        let c = ctx(&[("aws:username", &["ÉMILE"])]);
        assert!(check(
            "StringEqualsIgnoreCase",
            "aws:username",
            &["émile"],
            &c
        ));
    }

    #[test]
    fn missing_keys() {
        let empty = ctx(&[]);
        // Positive operators are false, negated ones true.
        assert!(!check(
            "StringEquals",
            "aws:PrincipalTag/team",
            &["a"],
            &empty
        ));
        assert!(!check(
            "StringLike",
            "aws:PrincipalTag/team",
            &["*"],
            &empty
        ));
        assert!(check(
            "StringNotEquals",
            "aws:PrincipalTag/team",
            &["a"],
            &empty
        ));
        assert!(check(
            "StringNotLike",
            "aws:PrincipalTag/team",
            &["a"],
            &empty
        ));
        assert!(check(
            "NotIpAddress",
            "aws:SourceIp",
            &["10.0.0.0/8"],
            &empty
        ));
        assert!(check("ArnNotLike", "aws:SourceArn", &["arn:*"], &empty));
        assert!(!check("NumericLessThan", "s3:max-keys", &["10"], &empty));
        // ...IfExists is true whatever the operator.
        assert!(check(
            "StringEqualsIfExists",
            "ec2:InstanceType",
            &["t2.micro"],
            &empty
        ));
        assert!(check(
            "NumericLessThanIfExists",
            "s3:max-keys",
            &["10"],
            &empty
        ));
        // But when the key exists, IfExists checks it.
        let c = ctx(&[("ec2:instancetype", &["m5.large"])]);
        assert!(!check(
            "StringLikeIfExists",
            "ec2:InstanceType",
            &["t2.*"],
            &c
        ));
        assert!(check(
            "StringLikeIfExists",
            "ec2:InstanceType",
            &["m5.*"],
            &c
        ));
        // An empty value set counts as missing.
        let c = ctx(&[("aws:tagkeys", &[])]);
        assert!(!check("StringEquals", "aws:TagKeys", &["a"], &c));
        assert!(check("Null", "aws:TagKeys", &["true"], &c));
    }

    #[test]
    fn set_qualifiers() {
        let c = ctx(&[("aws:tagkeys", &["PostDateTime", "UserName"])]);
        let allowed = ["PostDateTime", "Message", "Tags"];
        // The worked example of "Conditions with multiple context keys or values".
        assert!(!check(
            "ForAllValues:StringLike",
            "aws:TagKeys",
            &allowed,
            &c
        ));
        assert!(check("ForAnyValue:StringLike", "aws:TagKeys", &allowed, &c));
        let c2 = ctx(&[("aws:tagkeys", &["PostDateTime", "Message"])]);
        assert!(check(
            "ForAllValues:StringLike",
            "aws:TagKeys",
            &allowed,
            &c2
        ));
        assert!(!check(
            "ForAnyValue:StringEquals",
            "aws:TagKeys",
            &["ID"],
            &c2
        ));

        // Missing or empty keys: ForAllValues true, ForAnyValue false.
        for c in [ctx(&[]), ctx(&[("aws:tagkeys", &[])])] {
            assert!(check(
                "ForAllValues:StringEquals",
                "aws:TagKeys",
                &["a"],
                &c
            ));
            assert!(!check(
                "ForAnyValue:StringEquals",
                "aws:TagKeys",
                &["a"],
                &c
            ));
            assert!(!check(
                "ForAnyValue:StringNotEquals",
                "aws:TagKeys",
                &["a"],
                &c
            ));
            assert!(check(
                "ForAnyValue:StringEqualsIfExists",
                "aws:TagKeys",
                &["a"],
                &c
            ));
        }

        // ForAllValues:StringNotLike, as in the multivalued-context-keys examples: true when
        // no request value starts with key1, and when the key is absent.
        let deny = |values: &[&str]| {
            check(
                "ForAllValues:StringNotLike",
                "aws:TagKeys",
                &["key1*"],
                &ctx(&[("aws:tagkeys", values)]),
            )
        };
        assert!(!deny(&["key1:legal"]));
        assert!(!deny(&["key1:hr", "key1:personnel"]));
        assert!(deny(&["key2:audit"]));
        assert!(check(
            "ForAllValues:StringNotLike",
            "aws:TagKeys",
            &["key1*"],
            &ctx(&[])
        ));
        // ForAnyValue with a negated operator: some request value matches no policy value.
        let c = ctx(&[("aws:tagkeys", &["a", "b"])]);
        assert!(check(
            "ForAnyValue:StringNotEquals",
            "aws:TagKeys",
            &["a"],
            &c
        ));
        assert!(!check(
            "ForAnyValue:StringNotEquals",
            "aws:TagKeys",
            &["a", "b"],
            &c
        ));
        // Without a qualifier, a multivalued key matches if any value matches, and a
        // negated operator needs every value to miss.
        assert!(check("StringEquals", "aws:TagKeys", &["b"], &c));
        assert!(!check("StringNotEquals", "aws:TagKeys", &["b"], &c));
        assert!(check("StringNotEquals", "aws:TagKeys", &["z"], &c));
    }

    #[test]
    fn numeric() {
        let c = ctx(&[("s3:max-keys", &["10"])]);
        assert!(check("NumericEquals", "s3:max-keys", &["10"], &c));
        assert!(check("NumericEquals", "s3:max-keys", &["10.0"], &c));
        assert!(!check("NumericNotEquals", "s3:max-keys", &["10"], &c));
        assert!(check("NumericNotEquals", "s3:max-keys", &["11"], &c));
        assert!(check("NumericLessThan", "s3:max-keys", &["11"], &c));
        assert!(!check("NumericLessThan", "s3:max-keys", &["10"], &c));
        assert!(check("NumericLessThanEquals", "s3:max-keys", &["10"], &c));
        assert!(check("NumericGreaterThan", "s3:max-keys", &["9.5"], &c));
        assert!(!check("NumericGreaterThan", "s3:max-keys", &["10"], &c));
        assert!(check(
            "NumericGreaterThanEquals",
            "s3:max-keys",
            &["10"],
            &c
        ));
        // Unreadable values never match.
        assert!(!check("NumericEquals", "s3:max-keys", &["ten"], &c));
        let c = ctx(&[("s3:max-keys", &["lots"])]);
        assert!(!check("NumericLessThan", "s3:max-keys", &["10"], &c));
    }

    #[test]
    fn dates() {
        let c = ctx(&[("aws:currenttime", &["2024-06-01T12:00:00Z"])]);
        assert!(check(
            "DateGreaterThan",
            "aws:CurrentTime",
            &["2024-01-01T00:00:00Z"],
            &c
        ));
        assert!(check(
            "DateLessThan",
            "aws:CurrentTime",
            &["2025-01-01"],
            &c
        ));
        assert!(check(
            "DateEquals",
            "aws:CurrentTime",
            &["2024-06-01T14:00:00+02:00"],
            &c
        ));
        assert!(!check(
            "DateNotEquals",
            "aws:CurrentTime",
            &["2024-06-01T12:00:00.000Z"],
            &c
        ));
        assert!(check(
            "DateLessThanEquals",
            "aws:CurrentTime",
            &["2024-06-01T12:00Z"],
            &c
        ));
        assert!(check(
            "DateGreaterThanEquals",
            "aws:CurrentTime",
            &["1717243200"],
            &c
        ));
        assert!(!check(
            "DateGreaterThan",
            "aws:CurrentTime",
            &["1717243200"],
            &c
        ));
        // Epoch seconds in the request, as in aws:EpochTime.
        let c = ctx(&[("aws:epochtime", &["1717243200"])]);
        assert!(check(
            "DateEquals",
            "aws:EpochTime",
            &["2024-06-01T12:00:00Z"],
            &c
        ));
    }

    #[test]
    fn date_parsing() {
        let d = |s| parse_date(s).map(|n| n / NANOS);
        assert_eq!(d("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(d("1970"), Some(1970)); // epoch seconds, as IAM reads it
        assert_eq!(d("1970-01"), Some(0));
        assert_eq!(d("2000-03-01"), Some(951_868_800));
        assert_eq!(d("2000-03-01T00:00:00-01:30"), Some(951_868_800 + 5400));
        assert_eq!(parse_date("1970-01-01T00:00:00.25Z"), Some(NANOS / 4));
        assert_eq!(parse_date("0.5"), Some(NANOS / 2));
        for bad in [
            "2024-13-01",
            "2024-02-30",
            "2024-01-01T25:00Z",
            "2024-01-01T10",
            "soon",
            "",
            "2024-01-01X",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn bool_binary_null() {
        let c = ctx(&[("aws:securetransport", &["true"])]);
        assert!(check("Bool", "aws:SecureTransport", &["true"], &c));
        assert!(check("Bool", "aws:SecureTransport", &["True"], &c));
        assert!(!check("Bool", "aws:SecureTransport", &["false"], &c));
        assert!(!check("Bool", "aws:MultiFactorAuthPresent", &["false"], &c));
        assert!(check(
            "BoolIfExists",
            "aws:MultiFactorAuthPresent",
            &["false"],
            &c
        ));

        let c = ctx(&[("k:bin", &["QmluYXJ5VmFsdWVJbkJhc2U2NA=="])]);
        assert!(check(
            "BinaryEquals",
            "k:bin",
            &["QmluYXJ5VmFsdWVJbkJhc2U2NA=="],
            &c
        ));
        assert!(check(
            "BinaryEquals",
            "k:bin",
            &["QmluYXJ5VmFsdWVJbkJhc2U2NA"],
            &c
        ));
        assert!(!check("BinaryEquals", "k:bin", &["QmluYXJ5"], &c));
        assert_eq!(decode_base64("QmluYXJ5").as_deref(), Some(&b"Binary"[..]));

        assert!(check("Null", "aws:TokenIssueTime", &["true"], &c));
        assert!(!check("Null", "aws:TokenIssueTime", &["false"], &c));
        assert!(check("Null", "k:bin", &["false"], &c));
        assert!(!check("Null", "k:bin", &["true"], &c));
    }

    #[test]
    fn ip_addresses() {
        let c = ctx(&[("aws:sourceip", &["203.0.113.17"])]);
        assert!(check("IpAddress", "aws:SourceIp", &["203.0.113.0/24"], &c));
        assert!(check("IpAddress", "aws:SourceIp", &["203.0.113.17"], &c));
        assert!(!check("IpAddress", "aws:SourceIp", &["203.0.114.0/24"], &c));
        assert!(check(
            "NotIpAddress",
            "aws:SourceIp",
            &["10.0.0.0/8", "192.168.0.0/16"],
            &c
        ));
        assert!(!check(
            "NotIpAddress",
            "aws:SourceIp",
            &["10.0.0.0/8", "203.0.113.0/24"],
            &c
        ));
        assert!(!check("IpAddress", "aws:SourceIp", &["2001:DB8::/32"], &c));
        let c = ctx(&[("aws:sourceip", &["2001:db8:1234:5678::1"])]);
        assert!(check(
            "IpAddress",
            "aws:SourceIp",
            &["2001:DB8:1234:5678::/64"],
            &c
        ));
        assert!(!check("IpAddress", "aws:SourceIp", &["203.0.113.0/24"], &c));
        let c = ctx(&[("aws:sourceip", &["::ffff:203.0.113.9"])]);
        assert!(check("IpAddress", "aws:SourceIp", &["203.0.113.0/24"], &c));
        // Garbage on either side never matches.
        let c = ctx(&[("aws:sourceip", &["not-an-ip"])]);
        assert!(!check("IpAddress", "aws:SourceIp", &["0.0.0.0/0"], &c));
        let c = ctx(&[("aws:sourceip", &["10.1.1.1"])]);
        assert!(!check("IpAddress", "aws:SourceIp", &["10.1.1.300"], &c));
    }

    #[test]
    fn arns() {
        let c = ctx(&[(
            "aws:sourcearn",
            &[
                "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
            ],
        )]);
        let pattern = ["arn:aws:someservice:*:111122223333:finance/*"];
        // The documented difference between StringLike and ArnLike.
        assert!(check("StringLike", "aws:SourceArn", &pattern, &c));
        assert!(!check("ArnLike", "aws:SourceArn", &pattern, &c));
        assert!(check("ArnNotLike", "aws:SourceArn", &pattern, &c));
        let c = ctx(&[(
            "aws:sourcearn",
            &["arn:aws:sns:us-east-1:123456789012:topic"],
        )]);
        assert!(check(
            "ArnEquals",
            "aws:SourceArn",
            &["arn:aws:sns:us-east-1:123456789012:topic"],
            &c
        ));
        assert!(check(
            "ArnLike",
            "aws:SourceArn",
            &["arn:aws:sns:*:123456789012:*"],
            &c
        ));
        assert!(!check(
            "ArnEquals",
            "aws:SourceArn",
            &["arn:aws:sns:us-east-1:123456789012:Topic"],
            &c
        ));
        assert!(!check(
            "ArnNotEquals",
            "aws:SourceArn",
            &["arn:aws:sns:*:*:*"],
            &c
        ));
    }

    #[test]
    fn variables_in_values() {
        let c = ctx(&[
            ("aws:username", &["alice"]),
            ("s3:prefix", &["home/alice/docs"]),
            ("aws:principalarn", &["arn:aws:iam::1:user/alice"]),
        ]);
        assert!(check(
            "StringLike",
            "s3:prefix",
            &["home/${aws:username}/*"],
            &c
        ));
        assert!(!check(
            "StringEquals",
            "s3:prefix",
            &["home/${aws:username}"],
            &c
        ));
        assert!(check(
            "StringEquals",
            "aws:username",
            &["${aws:username}"],
            &c
        ));
        assert!(check(
            "ArnLike",
            "aws:PrincipalArn",
            &["arn:aws:iam::*:user/${aws:username}"],
            &c
        ));
        // A variable that does not resolve makes its value match nothing.
        let mut missing = Vec::new();
        let op = Operator::parse("StringLike").unwrap();
        let cond =
            Condition::new(op, "s3:prefix", &["home/${aws:userid}/*".to_string()], true).unwrap();
        assert!(!cond.eval(&c, &mut missing));
        assert_eq!(missing, ["aws:userid"]);
        // Without variables (version 2008-10-17) the text is literal.
        let cond = Condition::new(
            Operator::parse("StringEquals").unwrap(),
            "s3:prefix",
            &["${aws:username}".to_string()],
            false,
        )
        .unwrap();
        let c = ctx(&[("s3:prefix", &["${aws:username}"])]);
        assert!(cond.eval(&c, &mut Vec::new()));
    }

    #[test]
    fn bad_dates_are_refused() {
        let op = Operator::parse("DateLessThan").unwrap();
        assert_eq!(
            Condition::new(op, "aws:CurrentTime", &["tomorrow".to_string()], true),
            Err(ValueError::BadDate)
        );
    }

    #[test]
    fn dates_as_iams_legacy_parser_reads_them() {
        for ok in [
            "2019-07-01T13:20:15Z",
            "2016-12-13T21:20:37.593194+00:00",
            "2016-12-13t2:00:00.593194+23",
            "01T",
            "-292275054",
            "2024-01-01T10",
            "1700000000",
            "0.5",
        ] {
            assert!(legacy_date_ok(ok), "{ok}");
        }
        for bad in [
            "sdfdsf",
            "234-13",
            "2016-12-13t2:00:00.593194+1",
            "2016-12-13t2:00:00.1999999999+10:59",
            "9223372036854775808",
            "-292275055",
            "2024-01-32",
            "2024-01-01T24:00",
            "yesterday",
            "",
        ] {
            assert!(!legacy_date_ok(bad), "{bad}");
        }
        // Read, but no instant: it never matches.
        let op = Operator::parse("DateGreaterThan").unwrap();
        let cond = Condition::new(op, "aws:CurrentTime", &["01T".to_string()], true).unwrap();
        let c = ctx(&[("aws:currenttime", &["2024-06-01T12:00:00Z"])]);
        assert!(!cond.eval(&c, &mut Vec::new()));
    }
}
