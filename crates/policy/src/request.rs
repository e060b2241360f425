//! The request context a policy is evaluated against: who is asking, to do what, to which
//! resource, and the condition keys AWS gathered along the way.

use std::collections::BTreeMap;

/// The condition keys of a request: lowercased key name to its values.
///
/// Every value is a string, as in AWS's request context; the condition operator decides how
/// to read it (number, date, IP address...). Keys are lowercase because IAM condition key
/// names are case-insensitive ("IAM JSON policy elements: Condition"); use
/// [`Request::with_context`] and friends rather than inserting mixed-case keys by hand.
pub type Context = BTreeMap<String, Vec<String>>;

/// One authorization question: may `principal` perform `action` on `resource`?
///
/// Build one per API call; it is a few strings and a small map, and the policies it is
/// evaluated against are compiled once and shared. Fields are public so a caller can keep a
/// base request and change the action or resource between evaluations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// `service:Action`, e.g. `ec2:DescribeInstances` (matched case-insensitively).
    pub action: String,
    /// The resource ARN, or `*` for actions that do not act on a particular resource.
    pub resource: String,
    /// Who is asking. Needed for resource-based and trust policies, which name principals;
    /// `None` is treated as an anonymous caller.
    pub principal: Option<Principal>,
    /// Condition keys, lowercased, each with one or more string values.
    pub context: Context,
}

impl Request {
    /// A request with no principal and no condition keys.
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
            principal: None,
            context: Context::new(),
        }
    }

    /// Sets the principal.
    pub fn with_principal(mut self, principal: Principal) -> Self {
        self.principal = Some(principal);
        self
    }

    /// Adds one value to condition key `key` (keys are case-insensitive).
    pub fn with_context(mut self, key: &str, value: impl Into<String>) -> Self {
        self.insert_context(key, value);
        self
    }

    /// Sets condition key `key` to exactly `values` (an empty list is an empty set, which
    /// `ForAllValues` treats as true and `ForAnyValue` as false).
    pub fn with_context_values<I, S>(mut self, key: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.context.insert(
            key.to_lowercase(),
            values.into_iter().map(Into::into).collect(),
        );
        self
    }

    /// Adds one value to condition key `key`.
    pub fn insert_context(&mut self, key: &str, value: impl Into<String>) {
        self.context
            .entry(key.to_lowercase())
            .or_default()
            .push(value.into());
    }

    /// Removes condition key `key`.
    pub fn remove_context(&mut self, key: &str) {
        self.context.remove(&key.to_lowercase());
    }

    /// The values of condition key `key`, looked up case-insensitively.
    pub fn context_values(&self, key: &str) -> Option<&[String]> {
        lookup(&self.context, key)
    }

    /// Fills the global keys AWS derives from the principal — `aws:PrincipalArn`,
    /// `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:username` (IAM users only) and
    /// `aws:PrincipalServiceName` (services) — leaving any the caller already set.
    pub fn with_principal_keys(mut self) -> Self {
        let Some(p) = self.principal.clone() else {
            return self;
        };
        let mut set = |key: &str, value: &str| {
            self.context
                .entry(key.to_string())
                .or_insert_with(|| vec![value.to_string()]);
        };
        if p.kind.is_aws() {
            set("aws:principalarn", &p.id);
        }
        if let Some(account) = &p.account {
            set("aws:principalaccount", account);
        }
        let principal_type = match p.kind {
            PrincipalKind::Root => Some("Account"),
            PrincipalKind::User => Some("User"),
            PrincipalKind::AssumedRole => Some("AssumedRole"),
            PrincipalKind::FederatedUser => Some("FederatedUser"),
            PrincipalKind::Anonymous => Some("Anonymous"),
            _ => None,
        };
        if let Some(t) = principal_type {
            set("aws:principaltype", t);
        }
        if p.kind == PrincipalKind::User
            && let Some(name) = p.id.rsplit('/').next()
        {
            set("aws:username", name);
        }
        if p.kind == PrincipalKind::Service {
            set("aws:principalservicename", &p.id);
        }
        self
    }
}

/// Looks `key` up without allocating when it is already lowercase (as compiled policies'
/// keys always are).
pub(crate) fn lookup<'c>(context: &'c Context, key: &str) -> Option<&'c [String]> {
    if key.bytes().any(|b| b.is_ascii_uppercase()) || !key.is_ascii() {
        context.get(&key.to_lowercase()).map(Vec::as_slice)
    } else {
        context.get(key).map(Vec::as_slice)
    }
}

/// What kind of caller a [`Principal`] is; decides which policy `Principal` entries name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// The account root user (`arn:aws:iam::123456789012:root`).
    Root,
    /// An IAM user (`arn:aws:iam::123456789012:user/path/name`).
    User,
    /// A role session (`arn:aws:sts::123456789012:assumed-role/name/session`).
    AssumedRole,
    /// A `GetFederationToken` session (`arn:aws:sts::123456789012:federated-user/name`).
    FederatedUser,
    /// An AWS service (`ec2.amazonaws.com`), named in policies with `"Service"`.
    Service,
    /// A web-identity or SAML provider, named in policies with `"Federated"`.
    Federated,
    /// An S3 canonical user ID, named in policies with `"CanonicalUser"`.
    CanonicalUser,
    /// An unauthenticated caller; only `"*"` names it.
    Anonymous,
}

impl PrincipalKind {
    /// Principals named with `"AWS"` in a policy.
    pub fn is_aws(self) -> bool {
        matches!(
            self,
            Self::Root | Self::User | Self::AssumedRole | Self::FederatedUser
        )
    }
}

/// The caller, as policies' `Principal` elements see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What kind of caller this is.
    pub kind: PrincipalKind,
    /// The ARN for AWS principals; the service name, provider, or canonical user ID for the
    /// others; `*` for anonymous.
    pub id: String,
    /// The 12-digit account the principal belongs to (AWS principals only).
    pub account: Option<String>,
    /// For a role session, the ARN of the role it was assumed from, so a policy naming the
    /// role also names its sessions.
    pub role_arn: Option<String>,
}

impl Principal {
    fn aws(kind: PrincipalKind, arn: String) -> Self {
        Self {
            account: account_of(&arn),
            kind,
            id: arn,
            role_arn: None,
        }
    }

    /// The root user of `account`.
    pub fn root(account: &str) -> Self {
        Self::aws(PrincipalKind::Root, format!("arn:aws:iam::{account}:root"))
    }

    /// An IAM user, by ARN.
    pub fn user(arn: impl Into<String>) -> Self {
        Self::aws(PrincipalKind::User, arn.into())
    }

    /// A role session, by its `assumed-role` ARN and the ARN of the role (which carries the
    /// role's path, something the session ARN does not).
    pub fn assumed_role(session_arn: impl Into<String>, role_arn: impl Into<String>) -> Self {
        let mut p = Self::aws(PrincipalKind::AssumedRole, session_arn.into());
        p.role_arn = Some(role_arn.into());
        p
    }

    /// A federated-user session, by ARN.
    pub fn federated_user(arn: impl Into<String>) -> Self {
        Self::aws(PrincipalKind::FederatedUser, arn.into())
    }

    /// An AWS service principal such as `ec2.amazonaws.com`.
    pub fn service(name: impl Into<String>) -> Self {
        Self {
            kind: PrincipalKind::Service,
            id: name.into(),
            account: None,
            role_arn: None,
        }
    }

    /// A web-identity or SAML provider (`cognito-identity.amazonaws.com`, or the provider ARN).
    pub fn federated(provider: impl Into<String>) -> Self {
        Self {
            kind: PrincipalKind::Federated,
            id: provider.into(),
            account: None,
            role_arn: None,
        }
    }

    /// An S3 canonical user ID.
    pub fn canonical_user(id: impl Into<String>) -> Self {
        Self {
            kind: PrincipalKind::CanonicalUser,
            id: id.into(),
            account: None,
            role_arn: None,
        }
    }

    /// An unauthenticated caller.
    pub fn anonymous() -> Self {
        Self {
            kind: PrincipalKind::Anonymous,
            id: "*".to_string(),
            account: None,
            role_arn: None,
        }
    }

    /// Recognises an IAM/STS principal ARN: `...:root`, `...:user/...`,
    /// `...:assumed-role/role/session` (the role ARN is derived without a path; use
    /// [`Principal::assumed_role`] for roles with paths) and `...:federated-user/...`.
    pub fn from_arn(arn: &str) -> Option<Self> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, partition, service, _, account, resource] = parts.as_slice() else {
            return None;
        };
        match (*service, *resource) {
            ("iam", "root") => Some(Self::aws(PrincipalKind::Root, arn.to_string())),
            ("iam", r) if r.starts_with("user/") => Some(Self::user(arn)),
            ("sts", r) if r.starts_with("assumed-role/") => {
                let role = r["assumed-role/".len()..].split('/').next()?;
                let role_arn = format!("arn:{partition}:iam::{account}:role/{role}");
                Some(Self::assumed_role(arn, role_arn))
            }
            ("sts", r) if r.starts_with("federated-user/") => Some(Self::federated_user(arn)),
            _ => None,
        }
    }
}

/// The account segment of an ARN, if it has one.
pub(crate) fn account_of(arn: &str) -> Option<String> {
    let account = arn.split(':').nth(4)?;
    (!account.is_empty()).then(|| account.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive() {
        let r = Request::new("s3:GetObject", "*").with_context("AWS:SourceIp", "10.0.0.1");
        assert_eq!(
            r.context_values("aws:sourceip"),
            Some(&["10.0.0.1".to_string()][..])
        );
        assert_eq!(
            r.context_values("Aws:SourceIP"),
            Some(&["10.0.0.1".to_string()][..])
        );
        assert!(r.context.contains_key("aws:sourceip"));
    }

    #[test]
    fn from_arn_recognises_kinds() {
        let s = Principal::from_arn("arn:aws:sts::111122223333:assumed-role/Admin/alice").unwrap();
        assert_eq!(s.kind, PrincipalKind::AssumedRole);
        assert_eq!(s.account.as_deref(), Some("111122223333"));
        assert_eq!(
            s.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/Admin")
        );
        assert_eq!(
            Principal::from_arn("arn:aws:iam::111122223333:root")
                .unwrap()
                .kind,
            PrincipalKind::Root
        );
        assert_eq!(
            Principal::from_arn("arn:aws:iam::111122223333:user/a/b")
                .unwrap()
                .kind,
            PrincipalKind::User
        );
        assert!(Principal::from_arn("arn:aws:s3:::bucket").is_none());
    }

    #[test]
    fn principal_keys() {
        let r = Request::new("s3:GetObject", "*")
            .with_principal(Principal::user("arn:aws:iam::111122223333:user/dev/alice"))
            .with_principal_keys();
        assert_eq!(r.context_values("aws:username").unwrap(), ["alice"]);
        assert_eq!(r.context_values("aws:PrincipalType").unwrap(), ["User"]);
        assert_eq!(
            r.context_values("aws:PrincipalAccount").unwrap(),
            ["111122223333"]
        );
    }
}
