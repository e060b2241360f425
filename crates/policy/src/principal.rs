//! The `Principal` and `NotPrincipal` elements of resource-based and trust policies, and how
//! they name a caller ("IAM JSON policy elements: Principal"):
//! - `"*"` and `{"AWS": "*"}` name everyone, including anonymous callers.
//! - An account ID (`"123456789012"`) or its root ARN (`arn:aws:iam::123456789012:root`)
//!   names the account: any principal in it, which AWS then lets in only as far as that
//!   account's own identity policies allow ([`PrincipalMatch::Account`]).
//! - A user, role-session or federated-user ARN names that principal exactly.
//! - A role ARN names the role's sessions ([`PrincipalMatch::Role`]).
//! - `Service`, `Federated` and `CanonicalUser` entries name service principals, identity
//!   providers and S3 canonical users.
//! - Wildcards are not allowed inside principal ARNs; `*` alone is the only wildcard.

use crate::error::{MalformedPolicy, msg};
use crate::json::Json;
use crate::request::{Principal, PrincipalKind};

/// How a statement's `Principal` named the caller — which decides what an `Allow` in a
/// resource-based or trust policy grants on its own (see [`crate::evaluate`]).
///
/// Ordered from weakest to strongest, so the best of several matches is the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrincipalMatch {
    /// Through the caller's account (`"123456789012"` or `arn:aws:iam::123456789012:root`):
    /// the account's identity policies must also allow the request.
    Account,
    /// Through the ARN of the role the caller's session was assumed from: permissions
    /// boundaries and session policies still limit it.
    Role,
    /// By the caller's own ARN or ID, by `"*"`, or by not being listed in `NotPrincipal`.
    Direct,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AwsId {
    Any,
    Account(String),
    Arn(String),
}

/// A compiled `Principal` or `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrincipalSpec {
    negated: bool,
    any: bool,
    aws: Vec<AwsId>,
    service: Vec<String>,
    federated: Vec<String>,
    canonical: Vec<String>,
}

fn invalid(kind: &str, value: &str) -> MalformedPolicy {
    MalformedPolicy::new(format!(
        "Invalid principal in policy: \"{kind}\":\"{value}\""
    ))
}

/// A string, or a non-empty array of strings.
fn string_list(v: &Json) -> Result<Vec<&str>, MalformedPolicy> {
    match v {
        Json::String(s) => Ok(vec![s.as_str()]),
        Json::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| match &i.value {
                Json::String(s) => Ok(s.as_str()),
                _ => Err(MalformedPolicy::new(msg::SYNTAX)),
            })
            .collect(),
        _ => Err(MalformedPolicy::new(msg::SYNTAX)),
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_aws(value: &str) -> Result<AwsId, MalformedPolicy> {
    if value == "*" {
        return Ok(AwsId::Any);
    }
    if is_account_id(value) {
        return Ok(AwsId::Account(value.to_string()));
    }
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam" | "sts", "", account, resource]
            if !partition.is_empty()
                && is_account_id(account)
                && !resource.is_empty()
                && !value.contains(['*', '?']) =>
        {
            if *resource == "root" {
                Ok(AwsId::Account(account.to_string()))
            } else {
                Ok(AwsId::Arn(value.to_string()))
            }
        }
        _ => Err(invalid("AWS", value)),
    }
}

impl PrincipalSpec {
    /// Compiles the value of a `Principal` (or, with `negated`, `NotPrincipal`) element.
    pub fn parse(v: &Json, negated: bool) -> Result<Self, MalformedPolicy> {
        let mut spec = Self {
            negated,
            any: false,
            aws: Vec::new(),
            service: Vec::new(),
            federated: Vec::new(),
            canonical: Vec::new(),
        };
        match v {
            Json::String(s) if s == "*" => spec.any = true,
            Json::Object(members) if !members.is_empty() => {
                for (kind, value) in members {
                    let values = string_list(&value.value)?;
                    for s in values {
                        match kind.as_str() {
                            "AWS" => spec.aws.push(parse_aws(s)?),
                            "Service" | "Federated" | "CanonicalUser" if s.trim().is_empty() => {
                                return Err(invalid(kind, s));
                            }
                            "Service" => spec.service.push(s.to_string()),
                            "Federated" => spec.federated.push(s.to_string()),
                            "CanonicalUser" => spec.canonical.push(s.to_string()),
                            _ => return Err(MalformedPolicy::new(msg::SYNTAX)),
                        }
                    }
                }
            }
            _ => return Err(MalformedPolicy::new(msg::SYNTAX)),
        }
        Ok(spec)
    }

    /// How this element names `p` (an absent principal is anonymous), after applying
    /// `NotPrincipal`'s negation; `None` if the statement does not apply to `p`.
    pub fn matches(&self, p: Option<&Principal>) -> Option<PrincipalMatch> {
        let anonymous;
        let p = match p {
            Some(p) => p,
            None => {
                anonymous = Principal::anonymous();
                &anonymous
            }
        };
        let best = self.best_match(p);
        if self.negated {
            // Everyone not listed is named directly.
            best.is_none().then_some(PrincipalMatch::Direct)
        } else {
            best
        }
    }

    fn best_match(&self, p: &Principal) -> Option<PrincipalMatch> {
        if self.any {
            return Some(PrincipalMatch::Direct);
        }
        let mut best = None;
        for id in &self.aws {
            let m = match id {
                AwsId::Any => Some(PrincipalMatch::Direct),
                AwsId::Account(a) if p.kind.is_aws() && p.account.as_deref() == Some(a) => {
                    Some(if p.kind == PrincipalKind::Root {
                        PrincipalMatch::Direct
                    } else {
                        PrincipalMatch::Account
                    })
                }
                AwsId::Arn(arn) if p.kind.is_aws() && *arn == p.id => Some(PrincipalMatch::Direct),
                AwsId::Arn(arn) if p.role_arn.as_deref() == Some(arn) => Some(PrincipalMatch::Role),
                _ => None,
            };
            best = best.max(m);
        }
        let named = match p.kind {
            PrincipalKind::Service => self.service.iter().any(|s| s.eq_ignore_ascii_case(&p.id)),
            PrincipalKind::Federated => self.federated.contains(&p.id),
            PrincipalKind::CanonicalUser => self.canonical.contains(&p.id),
            _ => false,
        };
        if named {
            best = Some(PrincipalMatch::Direct);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn spec(text: &str) -> PrincipalSpec {
        PrincipalSpec::parse(&json::parse(text).unwrap().value, false).unwrap()
    }

    fn err(text: &str) -> String {
        PrincipalSpec::parse(&json::parse(text).unwrap().value, false)
            .unwrap_err()
            .message
    }

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    const ROLE: &str = "arn:aws:iam::111122223333:role/ops/Admin";
    const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/Admin/s1";

    #[test]
    fn account_forms_are_equivalent() {
        let alice = Principal::user(ALICE);
        for text in [
            r#"{"AWS":"111122223333"}"#,
            r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
        ] {
            let s = spec(text);
            assert_eq!(
                s.matches(Some(&alice)),
                Some(PrincipalMatch::Account),
                "{text}"
            );
            assert_eq!(
                s.matches(Some(&Principal::root("111122223333"))),
                Some(PrincipalMatch::Direct)
            );
            assert_eq!(
                s.matches(Some(&Principal::user(
                    "arn:aws:iam::999999999999:user/alice"
                ))),
                None
            );
            assert_eq!(
                s.matches(Some(&Principal::service("ec2.amazonaws.com"))),
                None
            );
        }
    }

    #[test]
    fn arns_roles_and_services() {
        let session = Principal::assumed_role(SESSION, ROLE);
        assert_eq!(
            spec(&format!(r#"{{"AWS":"{ROLE}"}}"#)).matches(Some(&session)),
            Some(PrincipalMatch::Role)
        );
        assert_eq!(
            spec(&format!(r#"{{"AWS":"{SESSION}"}}"#)).matches(Some(&session)),
            Some(PrincipalMatch::Direct)
        );
        assert_eq!(
            spec(&format!(r#"{{"AWS":["{ALICE}","{ROLE}"]}}"#))
                .matches(Some(&Principal::user(ALICE))),
            Some(PrincipalMatch::Direct)
        );
        let ec2 = spec(r#"{"Service":"ec2.amazonaws.com"}"#);
        assert_eq!(
            ec2.matches(Some(&Principal::service("ec2.amazonaws.com"))),
            Some(PrincipalMatch::Direct)
        );
        assert_eq!(
            ec2.matches(Some(&Principal::service("lambda.amazonaws.com"))),
            None
        );
        assert_eq!(ec2.matches(Some(&Principal::user(ALICE))), None);
        let fed = spec(r#"{"Federated":"cognito-identity.amazonaws.com"}"#);
        assert_eq!(
            fed.matches(Some(&Principal::federated(
                "cognito-identity.amazonaws.com"
            ))),
            Some(PrincipalMatch::Direct)
        );
        let cu = spec(r#"{"CanonicalUser":"79a59df900b949e55d96a1e698fbace"}"#);
        assert_eq!(
            cu.matches(Some(&Principal::canonical_user(
                "79a59df900b949e55d96a1e698fbace"
            ))),
            Some(PrincipalMatch::Direct)
        );
    }

    #[test]
    fn everyone() {
        for text in [r#""*""#, r#"{"AWS":"*"}"#] {
            let s = spec(text);
            assert_eq!(s.matches(None), Some(PrincipalMatch::Direct));
            assert_eq!(
                s.matches(Some(&Principal::user(ALICE))),
                Some(PrincipalMatch::Direct)
            );
        }
    }

    #[test]
    fn not_principal() {
        let s = PrincipalSpec::parse(
            &json::parse(&format!(r#"{{"AWS":"{ALICE}"}}"#))
                .unwrap()
                .value,
            true,
        )
        .unwrap();
        assert_eq!(s.matches(Some(&Principal::user(ALICE))), None);
        assert_eq!(
            s.matches(Some(&Principal::user("arn:aws:iam::111122223333:user/bob"))),
            Some(PrincipalMatch::Direct)
        );
    }

    #[test]
    fn invalid_principals() {
        assert_eq!(
            err(r#"{"AWS":"bob"}"#),
            r#"Invalid principal in policy: "AWS":"bob""#
        );
        assert_eq!(
            err(r#"{"AWS":"arn:aws:iam::111122223333:user/*"}"#),
            r#"Invalid principal in policy: "AWS":"arn:aws:iam::111122223333:user/*""#
        );
        assert_eq!(
            err(r#"{"Service":""}"#),
            r#"Invalid principal in policy: "Service":"""#
        );
        assert_eq!(err(r#""bob""#), msg::SYNTAX);
        assert_eq!(err(r#"{}"#), msg::SYNTAX);
        assert_eq!(err(r#"{"Users":"x"}"#), msg::SYNTAX);
        assert_eq!(err(r#"{"AWS":[]}"#), msg::SYNTAX);
    }
}
