//! Which service and region a request is for.
//!
//! Signed requests say it in their SigV4 credential scope
//! (`Credential=AKID/20261123/us-east-1/ec2/aws4_request`), in the `Authorization` header or, for
//! presigned URLs, the `X-Amz-Credential` query parameter. Unsigned requests fall back to the
//! `X-Amz-Target` header, the API `Version` parameter, the Host name and finally the path.

use crate::model::{SERVICES, ServiceDef, service};
use http::HeaderMap;

/// The parts of a SigV4 credential scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

impl CredentialScope {
    fn parse(credential: &str) -> Option<CredentialScope> {
        let mut parts = credential.trim().split('/');
        let access_key = parts.next()?.to_string();
        let date = parts.next()?.to_string();
        let region = parts.next()?.to_string();
        let service = parts.next()?.to_string();
        (parts.next()? == "aws4_request").then_some(CredentialScope {
            access_key,
            date,
            region,
            service,
        })
    }
}

/// The credential scope of a signed request, from its header or presigned query.
pub fn credential_scope(
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Option<CredentialScope> {
    if let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let rest = auth.strip_prefix("AWS4-HMAC-SHA256")?;
        let cred = rest
            .split(',')
            .find_map(|p| p.trim().strip_prefix("Credential="))?;
        return CredentialScope::parse(cred);
    }
    query
        .iter()
        .find(|(k, _)| k == "X-Amz-Credential")
        .and_then(|(_, v)| CredentialScope::parse(v))
}

/// The vendored service a signing name stands for. ELB and ELBv2 share a signing name and are
/// told apart by their API version; only v2 is vendored.
pub fn service_for_signing_name(
    name: &str,
    api_version: Option<&str>,
) -> Option<&'static ServiceDef> {
    match name {
        "elasticloadbalancing" => match api_version {
            Some("2012-06-01") => None,
            _ => service("elbv2"),
        },
        other => SERVICES.iter().find(|s| s.signing_name == other),
    }
}

/// Guesses the service of an unsigned request.
pub fn service_for_unsigned(
    headers: &HeaderMap,
    path: &str,
    api_version: Option<&str>,
) -> Option<&'static ServiceDef> {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let prefix = target.split('.').next().unwrap_or_default();
        return SERVICES
            .iter()
            .find(|s| s.model().target_prefix.as_deref() == Some(prefix));
    }
    if let Some(version) = api_version {
        return SERVICES
            .iter()
            .find(|s| s.api_version == version && !matches!(s.name, "route53" | "s3"));
    }
    if let Some(host) = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
    {
        let first = host.split('.').next().unwrap_or_default();
        if let Some(s) = SERVICES
            .iter()
            .find(|s| s.name == first || s.signing_name == first)
            && host.contains("amazonaws.com")
        {
            return Some(s);
        }
    }
    if path.starts_with("/2013-04-01/") {
        return service("route53");
    }
    if path != "/" {
        return service("s3");
    }
    None
}

/// The region named in an AWS host name such as `ec2.eu-west-1.amazonaws.com`.
pub fn region_from_host(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let mut parts = host.split('.');
    let _service = parts.next()?;
    let region = parts.next()?;
    let looks_like_region =
        region.split('-').count() >= 3 && region.chars().last().is_some_and(|c| c.is_ascii_digit());
    (looks_like_region && host.contains("amazonaws.com")).then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_from_authorization_header() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/ap-northeast-1/ec2/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc"
                .parse()
                .unwrap(),
        );
        let s = credential_scope(&h, &[]).unwrap();
        assert_eq!(
            (s.access_key.as_str(), s.region.as_str(), s.service.as_str()),
            ("AKIDEXAMPLE", "ap-northeast-1", "ec2")
        );
        assert_eq!(
            service_for_signing_name(&s.service, None).unwrap().name,
            "ec2"
        );
    }

    #[test]
    fn scope_from_presigned_query() {
        let q = vec![(
            "X-Amz-Credential".to_string(),
            "AK/20261123/us-west-2/sts/aws4_request".to_string(),
        )];
        let s = credential_scope(&HeaderMap::new(), &q).unwrap();
        assert_eq!(s.region, "us-west-2");
    }

    #[test]
    fn elb_versions_and_fallbacks() {
        assert_eq!(
            service_for_signing_name("elasticloadbalancing", Some("2015-12-01"))
                .unwrap()
                .name,
            "elbv2"
        );
        assert!(service_for_signing_name("elasticloadbalancing", Some("2012-06-01")).is_none());
        let h = HeaderMap::new();
        assert_eq!(
            service_for_unsigned(&h, "/", Some("2016-11-15"))
                .unwrap()
                .name,
            "ec2"
        );
        assert_eq!(
            service_for_unsigned(&h, "/", Some("2010-05-08"))
                .unwrap()
                .name,
            "iam"
        );
        assert_eq!(
            service_for_unsigned(&h, "/2013-04-01/hostedzone", None)
                .unwrap()
                .name,
            "route53"
        );
        assert_eq!(
            service_for_unsigned(&h, "/bucket/key", None).unwrap().name,
            "s3"
        );
    }
}
