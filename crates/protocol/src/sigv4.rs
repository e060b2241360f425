//! AWS Signature Version 4, checked on the server side: the `Authorization` header form and
//! the presigned-URL form. The checker rebuilds the canonical request from what arrived,
//! signs it with the secret the caller's key maps to, and compares. It knows nothing of
//! where secrets live; the caller looks the key up between [`parse`] and [`verify`].
//!
//! The rules are AWS's ("Create a signed AWS API request"): the canonical URI is the path
//! as sent, encoded once more (S3 alone signs it as sent); the query is decoded, re-encoded
//! with RFC 3986's unreserved set and sorted; only the signed headers count, their values
//! trimmed with inner runs of spaces collapsed; the payload hash is the body's SHA-256
//! unless `x-amz-content-sha256` says otherwise.

use crate::HttpRequest;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

type HmacSha256 = Hmac<Sha256>;

/// What a request's signature claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub access_key: String,
    /// `YYYYMMDD` of the credential scope.
    pub scope_date: String,
    pub region: String,
    pub service: String,
    /// `X-Amz-Date` (or `Date`), as sent.
    pub amz_date: String,
    pub signed_headers: Vec<String>,
    /// Hex, as sent.
    pub signature: String,
    /// `X-Amz-Security-Token`, for temporary credentials.
    pub session_token: Option<String>,
    /// Seconds a presigned URL stays valid; `None` for the header form.
    pub expires: Option<i64>,
}

/// The longest life a presigned URL may ask for: seven days.
pub const MAX_PRESIGNED_EXPIRES: i64 = 604_800;

/// Why a signature is refused. Each service words these its own way; see `errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// The request is not signed at all.
    Missing,
    /// A part of the `Authorization` header or presigned query is missing or malformed.
    Incomplete(String),
    /// The signature is not the one the secret gives.
    Mismatch {
        canonical_request: String,
        string_to_sign: String,
    },
    /// The request's time is too far from the server's.
    Skewed { amz_date: String, now: String },
    /// A presigned URL past its expiry.
    Expired { amz_date: String, now: String },
}

/// The most a request's time may differ from the server's (AWS: 15 minutes).
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn header<'a>(req: &'a HttpRequest<'_>, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The signature of `req`, or `Missing` when it carries none.
pub fn parse(req: &HttpRequest<'_>) -> Result<Signature, SigError> {
    let query: Vec<(String, String)> = decode_query(req.query);
    if let Some(auth) = header(req, "authorization") {
        let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256") else {
            return Err(SigError::Incomplete(
                "Only AWS4-HMAC-SHA256 signatures are supported.".into(),
            ));
        };
        let mut credential = None;
        let mut signed = None;
        let mut signature = None;
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let missing = |what: &str| {
            SigError::Incomplete(format!(
                "Authorization header requires '{what}' parameter. Authorization={auth}"
            ))
        };
        let credential = credential.ok_or_else(|| missing("Credential"))?;
        let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
        let signature = signature.ok_or_else(|| missing("Signature"))?;
        let amz_date = header(req, "x-amz-date")
            .map(str::to_string)
            .or_else(|| header(req, "date").and_then(http_date_to_amz))
            .ok_or_else(|| {
                SigError::Incomplete(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                        .into(),
                )
            })?;
        let (access_key, scope_date, region, service) = split_credential(credential)?;
        return Ok(Signature {
            access_key,
            scope_date,
            region,
            service,
            amz_date,
            signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
            signature: signature.to_string(),
            session_token: header(req, "x-amz-security-token").map(str::to_string),
            expires: None,
        });
    }
    let Some(credential) = param(&query, "X-Amz-Credential") else {
        return Err(SigError::Missing);
    };
    let need = |name: &str| {
        param(&query, name).ok_or_else(|| {
            SigError::Incomplete(format!(
                "AWS query-string parameters must include '{name}'. Re-examine the query-string parameters."
            ))
        })
    };
    if need("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err(SigError::Incomplete(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"".into(),
        ));
    }
    let amz_date = need("X-Amz-Date")?.to_string();
    let signed = need("X-Amz-SignedHeaders")?;
    let signature = need("X-Amz-Signature")?.to_string();
    let expires = need("X-Amz-Expires")?
        .parse::<i64>()
        .map_err(|_| SigError::Incomplete("X-Amz-Expires should be a number".into()))?;
    // SigV4 caps a presigned URL's life at seven days, and S3 words the refusals so.
    if expires < 0 {
        return Err(SigError::Incomplete(
            "X-Amz-Expires must be non-negative".into(),
        ));
    }
    if expires > MAX_PRESIGNED_EXPIRES {
        return Err(SigError::Incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES}"
        )));
    }
    let (access_key, scope_date, region, service) = split_credential(credential)?;
    Ok(Signature {
        access_key,
        scope_date,
        region,
        service,
        amz_date,
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature,
        session_token: param(&query, "X-Amz-Security-Token").map(str::to_string),
        expires: Some(expires),
    })
}

fn split_credential(c: &str) -> Result<(String, String, String, String), SigError> {
    let parts: Vec<&str> = c.split('/').collect();
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"] if !key.is_empty() => Ok((
            key.to_string(),
            date.to_string(),
            region.to_string(),
            service.to_string(),
        )),
        _ => Err(SigError::Incomplete(format!(
            "Credential should be scoped to a valid region, not '{c}'. Credential should be of the form <key>/<date>/<region>/<service>/aws4_request."
        ))),
    }
}

/// An RFC 7231 `Date` header as SigV4's basic ISO 8601 form.
fn http_date_to_amz(d: &str) -> Option<String> {
    let f = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let t = time::PrimitiveDateTime::parse(d, &f).ok()?;
    Some(amz_format(t.assume_utc()))
}

fn amz_format(t: OffsetDateTime) -> String {
    let f = format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(&f).unwrap_or_default()
}

fn parse_amz(d: &str) -> Option<OffsetDateTime> {
    let f = format_description!("[year][month][day]T[hour][minute][second]Z");
    Some(time::PrimitiveDateTime::parse(d, &f).ok()?.assume_utc())
}

/// Checks `sig` over `req` with `secret`, at server time `now`. `s3` selects S3's rules (the
/// path signed as sent, no double encoding).
pub fn verify(
    req: &HttpRequest<'_>,
    sig: &Signature,
    secret: &str,
    now: OffsetDateTime,
    s3: bool,
) -> Result<(), SigError> {
    let when = parse_amz(&sig.amz_date).ok_or_else(|| {
        SigError::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
            sig.amz_date
        ))
    })?;
    if !sig.amz_date.starts_with(&sig.scope_date) {
        return Err(SigError::Incomplete(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            sig.scope_date,
            &sig.amz_date[..sig.amz_date.len().min(8)],
            sig.amz_date
        )));
    }
    let (canonical_request, string_to_sign) = canonical(req, sig, s3);
    let key = signing_key(secret, &sig.scope_date, &sig.region, &sig.service);
    let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    let given = hex_decode(&sig.signature).unwrap_or_default();
    // Constant time: the comparison must not tell how much of a guess was right.
    if mac.verify_slice(&given).is_err() {
        return Err(SigError::Mismatch {
            canonical_request,
            string_to_sign,
        });
    }
    let delta = (now - when).whole_seconds();
    match sig.expires {
        Some(expires) if delta > expires => Err(SigError::Expired {
            amz_date: sig.amz_date.clone(),
            now: amz_format(now),
        }),
        // A presigned URL may be used until it expires, but not before it was made.
        Some(_) if delta < -MAX_SKEW_SECONDS => Err(SigError::Skewed {
            amz_date: sig.amz_date.clone(),
            now: amz_format(now),
        }),
        None if delta.abs() > MAX_SKEW_SECONDS => Err(SigError::Skewed {
            amz_date: sig.amz_date.clone(),
            now: amz_format(now),
        }),
        _ => Ok(()),
    }
}

/// The signing key for a secret and scope.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let mut k = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, "aws4_request"] {
        let mut mac = HmacSha256::new_from_slice(&k).expect("HMAC takes any key");
        mac.update(part.as_bytes());
        k = mac.finalize().into_bytes().to_vec();
    }
    k
}

/// The canonical request and the string to sign for `req` as `sig` describes it.
pub fn canonical(req: &HttpRequest<'_>, sig: &Signature, s3: bool) -> (String, String) {
    let path = if req.path.is_empty() { "/" } else { req.path };
    let uri = if s3 {
        path.to_string()
    } else {
        encode(&normalize_path(path), false)
    };
    let mut pairs: Vec<(String, String)> = decode_query(req.query)
        .into_iter()
        .filter(|(k, _)| sig.expires.is_none() || k != "X-Amz-Signature")
        .map(|(k, v)| (encode(&k, true), encode(&v, true)))
        .collect();
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers = String::new();
    for name in &sig.signed_headers {
        let values: Vec<String> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| collapse(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&values.join(","));
        headers.push('\n');
    }
    let payload = match header(req, "x-amz-content-sha256") {
        Some(h) => h.to_string(),
        None if sig.expires.is_some() && s3 => "UNSIGNED-PAYLOAD".to_string(),
        None => hex(&Sha256::digest(req.body)),
    };
    let canonical_request = format!(
        "{}\n{uri}\n{query}\n{headers}\n{}\n{payload}",
        req.method,
        sig.signed_headers.join(";")
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{}/{}/{}/aws4_request\n{}",
        sig.amz_date,
        sig.scope_date,
        sig.region,
        sig.service,
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    (canonical_request, string_to_sign)
}

/// Trimmed, with every run of spaces inside made one.
fn collapse(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes `.` and `..` segments and repeated slashes, as clients do before signing.
fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = format!("/{}", out.join("/"));
    if path.ends_with('/') && p.len() > 1 {
        p.push('/');
    }
    p
}

/// Percent-encodes all but RFC 3986's unreserved characters (and `/` unless `slash`).
fn encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The query's pairs, percent-decoded. A `+` stays a `+`: signers encode spaces as `%20`.
fn decode_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn at(s: &str) -> OffsetDateTime {
        parse_amz(s).unwrap()
    }

    /// AWS's documented example: IAM ListUsers, signed on 2015-08-30.
    fn list_users(signature: &str) -> (HeaderMap, &'static str) {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
        );
        let h = headers(&[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("host", "iam.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            ("authorization", &auth),
        ]);
        (h, "Action=ListUsers&Version=2010-05-08")
    }

    const DOC_SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    #[test]
    fn the_documented_example_verifies() {
        let (h, q) = list_users(DOC_SIGNATURE);
        let req = HttpRequest {
            method: "GET",
            path: "/",
            query: q,
            headers: &h,
            body: b"",
        };
        let sig = parse(&req).unwrap();
        assert_eq!(sig.access_key, "AKIDEXAMPLE");
        assert_eq!(sig.service, "iam");
        let (cr, sts) = canonical(&req, &sig, false);
        assert_eq!(
            hex(&Sha256::digest(cr.as_bytes())),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        assert!(sts.starts_with("AWS4-HMAC-SHA256\n20150830T123600Z\n"));
        assert_eq!(
            verify(&req, &sig, SECRET, at("20150830T124000Z"), false),
            Ok(())
        );
    }

    #[test]
    fn a_wrong_secret_a_tampered_request_or_a_late_one_is_refused() {
        let (h, q) = list_users(DOC_SIGNATURE);
        let req = HttpRequest {
            method: "GET",
            path: "/",
            query: q,
            headers: &h,
            body: b"",
        };
        let sig = parse(&req).unwrap();
        let now = at("20150830T124000Z");
        assert!(matches!(
            verify(&req, &sig, "not-the-secret", now, false),
            Err(SigError::Mismatch { .. })
        ));
        let tampered = HttpRequest {
            query: "Action=CreateUser&Version=2010-05-08",
            ..req
        };
        assert!(matches!(
            verify(&tampered, &sig, SECRET, now, false),
            Err(SigError::Mismatch { .. })
        ));
        // Within 15 minutes either way is fine; beyond, refused.
        assert!(verify(&req, &sig, SECRET, at("20150830T125000Z"), false).is_ok());
        assert!(matches!(
            verify(&req, &sig, SECRET, at("20150830T125200Z"), false),
            Err(SigError::Skewed { .. })
        ));
        assert!(matches!(
            verify(&req, &sig, SECRET, at("20150830T121000Z"), false),
            Err(SigError::Skewed { .. })
        ));
    }

    #[test]
    fn unsigned_and_malformed_requests() {
        let h = headers(&[("host", "ec2.amazonaws.com")]);
        let req = HttpRequest {
            method: "GET",
            path: "/",
            query: "Action=DescribeRegions",
            headers: &h,
            body: b"",
        };
        assert_eq!(parse(&req), Err(SigError::Missing));
        let h = headers(&[
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ec2/aws4_request, Signature=00",
            ),
            ("x-amz-date", "20150830T123600Z"),
        ]);
        let req = HttpRequest { headers: &h, ..req };
        assert!(matches!(parse(&req), Err(SigError::Incomplete(m)) if m.contains("SignedHeaders")));
    }

    #[test]
    fn paths_are_normalized_and_encoded_twice_except_for_s3() {
        assert_eq!(normalize_path("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(encode("/a b/%2F", false), "/a%20b/%252F");
        assert_eq!(collapse("  a   b  c "), "a b c");
        assert_eq!(
            decode_query("b=2&a=x%20y&a=1+1"),
            vec![
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "x y".to_string()),
                ("a".to_string(), "1+1".to_string())
            ]
        );
    }
}
