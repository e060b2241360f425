//! AWS's policy evaluation logic for a request within a single account
//! ("Policy evaluation logic" and "Policy evaluation for requests within a single account",
//! IAM User Guide):
//!
//! 1. Every applicable statement of every policy is evaluated. A statement applies when its
//!    action, resource, principal (resource-based and trust policies) and all its conditions
//!    match the request.
//! 2. Any applicable `Deny` anywhere is an explicit deny, final.
//! 3. The account root user is allowed everything not explicitly denied ("all requests are
//!    implicitly denied with the exception of the AWS account root user").
//! 4. Otherwise the request is allowed when the identity policies allow it and, if the
//!    principal has a permissions boundary, the boundary allows it and, if the session has
//!    session policies, one of them allows it (the effective permissions are their
//!    intersection).
//! 5. A resource-based policy `Allow` is added to that, depending on how it names the caller
//!    (the table in "Determining whether a request is allowed or denied within an account"):
//!    - naming the caller itself (its user, role-session or federated-user ARN, or `*`):
//!      allowed, "not limited by an implicit deny in an identity-based policy, a permissions
//!      boundary, or session policy";
//!    - naming the role a session was assumed from: allowed unless a permissions boundary or
//!      session policy implicitly denies it;
//!    - naming only the caller's account: no effect of its own — it delegates to the
//!      account, whose identity policies must allow the request (step 4).
//! 6. Anything else is an implicit deny.
//!
//! Not modelled: cross-account requests, Organizations SCPs and RCPs, VPC endpoint policies
//! and ACLs.

use crate::document::{Effect, Policy, ResourceBlock, ResourcePattern, Statement};
use crate::glob::{ArnPattern, ArnView};
use crate::json::Position;
use crate::principal::PrincipalMatch;
use crate::request::{PrincipalKind, Request};

/// A policy together with the name the caller knows it by (a policy ARN, `user/alice/inline`,
/// ...), which is reported back in [`MatchedStatement::policy_id`].
#[derive(Debug, Clone, Copy)]
pub struct NamedPolicy<'a> {
    /// The caller's name for the policy (SimulatePrincipalPolicy's `SourcePolicyId`).
    pub id: &'a str,
    /// The compiled policy.
    pub policy: &'a Policy,
}

/// Every policy that applies to one request, grouped by the role each plays. Borrowed, so
/// building one per request costs a few pointers.
#[derive(Debug, Clone, Default)]
pub struct PolicySets<'a> {
    /// The principal's identity policies: inline, attached managed, and its groups' policies.
    pub identity: Vec<NamedPolicy<'a>>,
    /// The principal's permissions boundary; `None` when it has none.
    pub permissions_boundary: Option<Vec<NamedPolicy<'a>>>,
    /// The session policies passed when the session was created; `None` when there were none.
    pub session: Option<Vec<NamedPolicy<'a>>>,
    /// The resource-based policy of the resource being accessed (bucket policy, queue
    /// policy, key policy...).
    pub resource: Option<NamedPolicy<'a>>,
}

impl<'a> PolicySets<'a> {
    /// No policies at all (everything is implicitly denied, except for the root user).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an identity policy.
    pub fn with_identity(mut self, id: &'a str, policy: &'a Policy) -> Self {
        self.identity.push(NamedPolicy { id, policy });
        self
    }

    /// Adds a permissions boundary policy.
    pub fn with_boundary(mut self, id: &'a str, policy: &'a Policy) -> Self {
        self.permissions_boundary
            .get_or_insert_with(Vec::new)
            .push(NamedPolicy { id, policy });
        self
    }

    /// Adds a session policy.
    pub fn with_session(mut self, id: &'a str, policy: &'a Policy) -> Self {
        self.session
            .get_or_insert_with(Vec::new)
            .push(NamedPolicy { id, policy });
        self
    }

    /// Sets the resource-based policy.
    pub fn with_resource(mut self, id: &'a str, policy: &'a Policy) -> Self {
        self.resource = Some(NamedPolicy { id, policy });
        self
    }
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The request is allowed.
    Allowed,
    /// An applicable `Deny` statement refuses the request.
    ExplicitDeny,
    /// Nothing allows the request (or a boundary or session policy does not).
    ImplicitDeny,
}

impl Decision {
    /// SimulatePrincipalPolicy's `EvalDecision` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::ExplicitDeny => "explicitDeny",
            Decision::ImplicitDeny => "implicitDeny",
        }
    }

    /// Whether the request may proceed.
    pub fn is_allowed(self) -> bool {
        self == Decision::Allowed
    }
}

/// Which role a policy played in an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicySource {
    /// One of [`PolicySets::identity`].
    Identity,
    /// One of [`PolicySets::permissions_boundary`].
    PermissionsBoundary,
    /// One of [`PolicySets::session`].
    Session,
    /// [`PolicySets::resource`].
    Resource,
    /// The trust policy given to [`trust_allows`].
    Trust,
}

/// A statement that determined the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedStatement {
    /// The role of the policy holding the statement.
    pub source: PolicySource,
    /// The caller's name for that policy.
    pub policy_id: String,
    /// The policy's index within its list in [`PolicySets`] (0 for the resource or trust
    /// policy).
    pub policy_index: usize,
    /// The statement's index within the policy.
    pub statement_index: usize,
    /// The statement's `Sid`.
    pub sid: Option<String>,
    /// The statement's effect.
    pub effect: Effect,
    /// Where the statement starts in its policy document.
    pub start: Position,
    /// Where it ends (its closing brace).
    pub end: Position,
    /// For statements with a `Principal`/`NotPrincipal`: how it named the caller.
    pub principal_match: Option<PrincipalMatch>,
}

/// What each kind of policy said, for callers that report it (SimulatePrincipalPolicy's
/// `PermissionsBoundaryDecisionDetail`, for example).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerResults {
    /// Some identity policy allows the request.
    pub identity_allows: bool,
    /// Whether the permissions boundary allows it; `None` without a boundary.
    pub boundary_allows: Option<bool>,
    /// Whether a session policy allows it; `None` without session policies.
    pub session_allows: Option<bool>,
    /// The strongest way an `Allow` in the resource-based policy named the caller; `None` if
    /// no `Allow` there applies.
    pub resource_grant: Option<PrincipalMatch>,
}

/// The result of [`evaluate`] or [`trust_allows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Allowed, explicitly denied, or implicitly denied.
    pub decision: Decision,
    /// The statements that determined the decision: the applicable `Deny` statements for an
    /// explicit deny, the applicable `Allow` statements when allowed, none otherwise.
    pub matched: Vec<MatchedStatement>,
    /// Condition keys (and policy variables) that relevant statements needed but the request
    /// context lacks, as first written in a policy (SimulatePrincipalPolicy's
    /// `MissingContextValues`).
    pub missing_context_keys: Vec<String>,
    /// What each kind of policy said.
    pub layers: LayerResults,
}

/// A statement that applied, found while scanning.
struct Hit<'p> {
    source: PolicySource,
    id: &'p str,
    policy_index: usize,
    statement_index: usize,
    statement: &'p Statement,
    principal_match: Option<PrincipalMatch>,
}

/// The request, prepared once and shared by every statement.
struct Scan<'r, 'p> {
    req: &'r Request,
    resource: ArnView<'r>,
    hits: Vec<Hit<'p>>,
    missing: Vec<&'p str>,
}

impl<'r, 'p> Scan<'r, 'p> {
    fn new(req: &'r Request) -> Self {
        Self {
            req,
            resource: ArnView::new(&req.resource),
            hits: Vec::new(),
            missing: Vec::new(),
        }
    }

    fn policy(&mut self, source: PolicySource, index: usize, named: NamedPolicy<'p>) {
        for (statement_index, st) in named.policy.statements().iter().enumerate() {
            if let Some(principal_match) = self.applies(st) {
                self.hits.push(Hit {
                    source,
                    id: named.id,
                    policy_index: index,
                    statement_index,
                    statement: st,
                    principal_match,
                });
            }
        }
    }

    /// Whether `st` applies to the request, and if so how its principal matched.
    fn applies(&mut self, st: &'p Statement) -> Option<Option<PrincipalMatch>> {
        // Cheapest and most selective first.
        if !st.actions.matches(&self.req.action) {
            return None;
        }
        let principal_match = match &st.principal {
            Some(spec) => Some(spec.matches(self.req.principal.as_ref())?),
            None => None,
        };
        if let Some(resources) = &st.resources
            && !self.resource_matches(resources)
        {
            return None;
        }
        // Every condition is evaluated (no short-circuit) so that all the context keys a
        // relevant statement needs are reported as missing, as SimulatePrincipalPolicy does.
        let mut all = true;
        for c in &st.conditions {
            all &= c.eval(&self.req.context, &mut self.missing);
        }
        all.then_some(principal_match)
    }

    fn resource_matches(&mut self, block: &'p ResourceBlock) -> bool {
        let hit = block.any
            || block.patterns.iter().any(|p| match p {
                ResourcePattern::Fixed(a) => a.is_match(&self.resource),
                ResourcePattern::Template(t) => t
                    .tokens(&self.req.context, &mut self.missing)
                    .is_some_and(|tokens| ArnPattern::from_tokens(tokens).is_match(&self.resource)),
            });
        hit != block.negated
    }

    fn allows(&self, source: PolicySource) -> bool {
        self.hits
            .iter()
            .any(|h| h.source == source && h.statement.effect == Effect::Allow)
    }

    fn finish(self, decision: Decision, layers: LayerResults) -> Evaluation {
        let wanted = match decision {
            Decision::Allowed => Some(Effect::Allow),
            Decision::ExplicitDeny => Some(Effect::Deny),
            Decision::ImplicitDeny => None,
        };
        let matched = self
            .hits
            .iter()
            .filter(|h| Some(h.statement.effect) == wanted)
            .map(|h| MatchedStatement {
                source: h.source,
                policy_id: h.id.to_string(),
                policy_index: h.policy_index,
                statement_index: h.statement_index,
                sid: h.statement.sid.clone(),
                effect: h.statement.effect,
                start: h.statement.start,
                end: h.statement.end,
                principal_match: h.principal_match,
            })
            .collect();
        let mut missing_context_keys: Vec<String> = Vec::new();
        for key in self.missing {
            if !missing_context_keys
                .iter()
                .any(|k| k.eq_ignore_ascii_case(key))
            {
                missing_context_keys.push(key.to_string());
            }
        }
        Evaluation {
            decision,
            matched,
            missing_context_keys,
            layers,
        }
    }
}

/// Decides `req` against every policy that applies to it, as AWS does within one account
/// (see the module docs for the rules and their sources).
///
/// ```
/// use kumori_policy::{evaluate, Decision, Policy, PolicyKind, PolicySets, Request};
/// let policy = Policy::parse(
///     r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}}"#,
///     PolicyKind::Identity,
/// ).unwrap();
/// let sets = PolicySets::new().with_identity("readonly", &policy);
/// let req = Request::new("s3:GetObject", "arn:aws:s3:::bucket/key");
/// assert_eq!(evaluate(&req, &sets).decision, Decision::Allowed);
/// ```
pub fn evaluate(req: &Request, sets: &PolicySets<'_>) -> Evaluation {
    let mut scan = Scan::new(req);
    for (i, p) in sets.identity.iter().enumerate() {
        scan.policy(PolicySource::Identity, i, *p);
    }
    for (i, p) in sets.permissions_boundary.iter().flatten().enumerate() {
        scan.policy(PolicySource::PermissionsBoundary, i, *p);
    }
    for (i, p) in sets.session.iter().flatten().enumerate() {
        scan.policy(PolicySource::Session, i, *p);
    }
    if let Some(p) = sets.resource {
        scan.policy(PolicySource::Resource, 0, p);
    }

    let layers = LayerResults {
        identity_allows: scan.allows(PolicySource::Identity),
        boundary_allows: sets
            .permissions_boundary
            .as_ref()
            .map(|_| scan.allows(PolicySource::PermissionsBoundary)),
        session_allows: sets
            .session
            .as_ref()
            .map(|_| scan.allows(PolicySource::Session)),
        resource_grant: scan
            .hits
            .iter()
            .filter(|h| h.source == PolicySource::Resource && h.statement.effect == Effect::Allow)
            .filter_map(|h| h.principal_match)
            .max(),
    };
    let decision = if scan.hits.iter().any(|h| h.statement.effect == Effect::Deny) {
        Decision::ExplicitDeny
    } else {
        let is_root = req
            .principal
            .as_ref()
            .is_some_and(|p| p.kind == PrincipalKind::Root);
        let within_limits =
            layers.boundary_allows.unwrap_or(true) && layers.session_allows.unwrap_or(true);
        let allowed = is_root
            || (layers.identity_allows && within_limits)
            || layers.resource_grant == Some(PrincipalMatch::Direct)
            || (layers.resource_grant == Some(PrincipalMatch::Role) && within_limits);
        if allowed {
            Decision::Allowed
        } else {
            Decision::ImplicitDeny
        }
    };
    scan.finish(decision, layers)
}

/// Decides whether a role's trust policy lets `req.principal` perform `req.action`
/// (`sts:AssumeRole`, `sts:AssumeRoleWithWebIdentity`, `sts:TagSession`...). Trust policies
/// have no `Resource`, so `req.resource` is ignored; conditions are evaluated as usual.
///
/// An explicit deny wins; otherwise an applicable `Allow` allows. When the allowing statement
/// named the caller only through its account ([`PrincipalMatch::Account`], e.g.
/// `{"AWS": "arn:aws:iam::123456789012:root"}`), AWS also requires the caller's identity
/// policies to allow `sts:AssumeRole` on the role: check
/// [`MatchedStatement::principal_match`] and call [`evaluate`] for that part. (A caller named
/// directly, in the same account, needs no identity permission; across accounts it always
/// does.)
pub fn trust_allows(trust: &Policy, req: &Request) -> Evaluation {
    let mut scan = Scan::new(req);
    scan.policy(
        PolicySource::Trust,
        0,
        NamedPolicy {
            id: trust.id().unwrap_or(""),
            policy: trust,
        },
    );
    let decision = if scan.hits.iter().any(|h| h.statement.effect == Effect::Deny) {
        Decision::ExplicitDeny
    } else if scan.allows(PolicySource::Trust) {
        Decision::Allowed
    } else {
        Decision::ImplicitDeny
    };
    let layers = LayerResults {
        resource_grant: scan
            .hits
            .iter()
            .filter(|h| h.statement.effect == Effect::Allow)
            .filter_map(|h| h.principal_match)
            .max(),
        ..LayerResults::default()
    };
    scan.finish(decision, layers)
}
