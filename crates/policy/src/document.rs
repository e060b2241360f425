//! Parsing and validating policy documents into compiled [`Policy`] values.
//!
//! Validation follows IAM's order of checks as observed from the outside (moto's
//! `policy_validation.py` reproduces it against real AWS): JSON and element syntax first,
//! then the rules for principals by kind of policy, then "legacy parsing" (Effect spelling,
//! dates, short ARNs), then Sids, then that actions and resources are present, then the
//! format of resources and actions. Each failure carries IAM's message:
//!
//! | Problem | Message |
//! | --- | --- |
//! | not JSON, unknown or duplicate element, wrong JSON type, unknown condition operator, `Version` other than `2008-10-17`/`2012-10-17`, both `Action` and `NotAction` (etc.) | `Syntax errors in policy.` |
//! | statement without `Effect` | `Missing required field Effect` |
//! | managed policy ([`Policy::parse_managed`]) without `Version` or with `2008-10-17` | `Policy document must be version 2012-10-17 or greater.` |
//! | `Principal`/`NotPrincipal` in an identity policy | `Policy document should not specify a principal.` |
//! | trust policy statement without a principal | `Invalid principal in policy: com.amazon.balsa.error.InvalidPolicyException: The passed in policy has a statement with no principals!` |
//! | resource-based policy statement without a principal | `Missing required field Principal` |
//! | `Resource`/`NotResource` in a trust policy | `Has prohibited field Resource` |
//! | `Effect` in the wrong case (`allow`), a date IAM's legacy parser cannot read, truncated ARN | `The policy failed legacy parsing` |
//! | non-alphanumeric Sid (identity and trust policies) | `Statement IDs (SID) must be alpha-numeric. ...` |
//! | repeated Sid | `Statement IDs (SID) in a single policy must be unique.` |
//! | no or empty `Action`/`NotAction` | `Policy statement must contain actions.` |
//! | no or empty `Resource`/`NotResource` (identity and resource-based policies) | `Policy statement must contain resources.` |
//! | resource neither `*` nor an ARN | `Resource X must be in ARN format or "*".` |
//! | unknown partition, wildcard or empty service, region in an IAM ARN or an S3 one other than an access point's | IAM's partition/vendor/region messages |
//! | action without `vendor:` | `Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.` |
//! | action with two colons, bad vendor characters | `Actions/Condition can contain only one colon.`, `Vendor X is not valid` |
//! | principal that is not `*`, an account, an IAM/STS ARN... | `Invalid principal in policy: "AWS":"X"` |
//!
//! Accepted although AWS documentation discourages them: an `Id` in identity policies (IAM
//! accepts it), `NullIfExists` (evaluated as `Null`), numbers and booleans as condition values
//! (the grammar allows them), condition values of the wrong type for their operator (they
//! never match, as in IAM), condition keys without a `vendor:` (IAM accepts `{"a": "x"}`),
//! dates IAM's legacy parser reads but that name no instant (`01T`: they never match).

use crate::condition::{Condition, Operator, ValueError};
use crate::error::{MalformedPolicy, msg};
use crate::glob::{ArnPattern, Glob};
use crate::json::{self, Json, LineIndex, Position, Spanned};
use crate::principal::PrincipalSpec;
use crate::variables::Template;
use std::collections::HashMap;

/// The policy language version, from the `Version` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `2008-10-17`, also what a policy without `Version` is: policy variables are literal text.
    V2008,
    /// `2012-10-17`: policy variables are substituted.
    V2012,
}

impl Version {
    /// The version as it appears in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2008 => "2008-10-17",
            Version::V2012 => "2012-10-17",
        }
    }
}

/// Where a policy is used, which decides what it may and must contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Attached to a user, group or role (inline or managed), a permissions boundary, or a
    /// session policy: no `Principal`, and `Resource` or `NotResource` is required.
    Identity,
    /// A role trust policy: `Principal` or `NotPrincipal` is required and `Resource` is not
    /// allowed (IAM: "Has prohibited field Resource").
    Trust,
    /// A resource-based policy such as an S3 bucket policy: `Principal` or `NotPrincipal`
    /// and `Resource` or `NotResource` are required.
    Resource,
}

/// A statement's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// The statement grants what it matches.
    Allow,
    /// The statement explicitly denies what it matches, overriding any allow.
    Deny,
}

/// A parsed, validated and compiled policy document. Compile once, evaluate many times; it
/// is immutable and can be shared between threads.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    version: Version,
    id: Option<String>,
    kind: PolicyKind,
    statements: Vec<Statement>,
}

impl Policy {
    /// Parses and validates `text` as a policy of the given kind, failing with IAM's
    /// `MalformedPolicyDocument` reason.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Self, MalformedPolicy> {
        parse(text, kind, false)
    }

    /// Parses `text` as a version of a managed policy: an identity policy that must be in
    /// the policy language of 2012-10-17 (IAM refuses a managed policy without `Version`, or
    /// with `2008-10-17`, though it takes such inline policies and trust policies).
    pub fn parse_managed(text: &str) -> Result<Self, MalformedPolicy> {
        parse(text, PolicyKind::Identity, true)
    }

    /// The `Version` element (2008-10-17 when absent).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The `Id` element.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The kind the policy was validated as.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }
}

/// One compiled statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    pub(crate) principal: Option<PrincipalSpec>,
    pub(crate) actions: ActionBlock,
    /// `None` in trust policies, which have no `Resource`: they apply to the role itself.
    pub(crate) resources: Option<ResourceBlock>,
    pub(crate) conditions: Vec<Condition>,
    pub(crate) start: Position,
    pub(crate) end: Position,
}

impl Statement {
    /// The `Sid` element.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// The `Effect` element.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Where the statement's `{` is in the document.
    pub fn start(&self) -> Position {
        self.start
    }

    /// Where the statement's closing `}` is in the document.
    pub fn end(&self) -> Position {
        self.end
    }
}

/// `Action` or `NotAction`, compiled to case-insensitive globs.
///
/// Patterns are filed under their vendor (`ec2` of `ec2:Describe*`) when it has no wildcard,
/// so a request meets only its own vendor's patterns: ReadOnlyAccess lists some 3,000
/// actions across hundreds of vendors, of which an `ec2:` request needs a handful.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActionBlock {
    negated: bool,
    any: bool,
    by_vendor: HashMap<String, Vec<Glob>>,
    /// Patterns whose vendor part has a wildcard (`*:Get*`).
    other: Vec<Glob>,
}

impl ActionBlock {
    fn new(negated: bool, actions: &[&str]) -> Self {
        let mut by_vendor: HashMap<String, Vec<Glob>> = HashMap::new();
        let mut other = Vec::new();
        for a in actions {
            let glob = Glob::new_ignore_ascii_case(a);
            match a.split_once(':') {
                Some((vendor, _)) if !vendor.contains(['*', '?']) => by_vendor
                    .entry(vendor.to_ascii_lowercase())
                    .or_default()
                    .push(glob),
                _ => other.push(glob),
            }
        }
        ActionBlock {
            negated,
            any: actions.contains(&"*"),
            by_vendor,
            other,
        }
    }

    pub fn matches(&self, action: &str) -> bool {
        if self.any {
            return !self.negated;
        }
        let own = action.split_once(':').and_then(|(vendor, _)| {
            if vendor.bytes().any(|b| b.is_ascii_uppercase()) {
                self.by_vendor.get(&vendor.to_ascii_lowercase())
            } else {
                self.by_vendor.get(vendor)
            }
        });
        let hit = own.is_some_and(|v| v.iter().any(|g| g.is_match(action)))
            || self.other.iter().any(|g| g.is_match(action));
        hit != self.negated
    }
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourceBlock {
    pub negated: bool,
    pub any: bool,
    pub patterns: Vec<ResourcePattern>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ResourcePattern {
    Fixed(ArnPattern),
    /// Holds policy variables: compiled per request.
    Template(Template),
}

fn syntax() -> MalformedPolicy {
    MalformedPolicy::new(msg::SYNTAX)
}

/// A statement that passed the syntax check, before compiling.
struct Raw<'a> {
    start: usize,
    end: usize,
    sid: Option<&'a str>,
    effect: &'a str,
    principal: Option<(&'a Json, bool)>,
    actions: Option<(Vec<&'a str>, bool)>,
    resources: Option<(Vec<&'a str>, bool)>,
    resource_field: Option<&'static str>,
    /// Operator name, key, values.
    conditions: Vec<(&'a str, &'a str, Vec<String>)>,
}

fn parse(text: &str, kind: PolicyKind, need_2012: bool) -> Result<Policy, MalformedPolicy> {
    let root = json::parse(text).map_err(|_| syntax())?;
    let Json::Object(members) = &root.value else {
        return Err(syntax());
    };
    let mut version = Version::V2008;
    let mut id = None;
    let mut statement = None;
    for (key, value) in members {
        match (key.as_str(), &value.value) {
            ("Version", Json::String(v)) if v == "2012-10-17" => version = Version::V2012,
            ("Version", Json::String(v)) if v == "2008-10-17" => version = Version::V2008,
            ("Id", Json::String(v)) => id = Some(v.clone()),
            ("Statement", _) => statement = Some(value),
            _ => return Err(syntax()),
        }
    }
    let statements: Vec<&Spanned> = match &statement.ok_or_else(syntax)?.value {
        Json::Object(_) => vec![statement.expect("checked above")],
        Json::Array(items) if !items.is_empty() => items.iter().collect(),
        _ => return Err(syntax()),
    };
    let raws = statements
        .into_iter()
        .map(syntax_pass)
        .collect::<Result<Vec<_>, _>>()?;
    // IAM checks the version right after the syntax, before anything else.
    if need_2012 && version != Version::V2012 {
        return Err(MalformedPolicy::new(msg::VERSION));
    }

    check_principals(&raws, kind)?;
    check_legacy(&raws)?;
    check_sids(&raws, kind)?;
    if raws
        .iter()
        .any(|r| r.actions.as_ref().is_none_or(|(a, _)| a.is_empty()))
    {
        return Err(MalformedPolicy::new(msg::MISSING_ACTIONS));
    }
    if kind != PolicyKind::Trust
        && raws
            .iter()
            .any(|r| r.resources.as_ref().is_none_or(|(a, _)| a.is_empty()))
    {
        return Err(MalformedPolicy::new(msg::MISSING_RESOURCES));
    }
    for raw in &raws {
        for r in raw.resources.iter().flat_map(|(rs, _)| rs) {
            if let Some(message) = resource_format_error(r) {
                return Err(MalformedPolicy::new(message));
            }
        }
    }
    // Condition keys need no `vendor:`: IAM takes `{"StringEquals": {"a": "x"}}`.
    for raw in &raws {
        for a in raw.actions.iter().flat_map(|(a, _)| a) {
            if let Some(message) = action_format_error(a) {
                return Err(MalformedPolicy::new(message));
            }
        }
    }

    let lines = LineIndex::new(text);
    let statements = raws
        .into_iter()
        .map(|raw| compile(raw, version, &lines))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Policy {
        version,
        id,
        kind,
        statements,
    })
}

/// A string, or an array of strings (possibly empty: emptiness is reported later, as IAM
/// reports it, as a missing element).
fn string_list(v: &Json) -> Result<Vec<&str>, MalformedPolicy> {
    match v {
        Json::String(s) => Ok(vec![s]),
        Json::Array(items) => items
            .iter()
            .map(|i| match &i.value {
                Json::String(s) => Ok(s.as_str()),
                _ => Err(syntax()),
            })
            .collect(),
        _ => Err(syntax()),
    }
}

/// A condition value as IAM compares it: strings as they are, numbers as written, booleans
/// as `true`/`false`.
fn scalar(v: &Json) -> Result<String, MalformedPolicy> {
    match v {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.clone()),
        Json::Bool(b) => Ok(b.to_string()),
        _ => Err(syntax()),
    }
}

fn condition_values(v: &Json) -> Result<Vec<String>, MalformedPolicy> {
    match v {
        Json::Array(items) => items.iter().map(|i| scalar(&i.value)).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn syntax_pass(st: &Spanned) -> Result<Raw<'_>, MalformedPolicy> {
    let Json::Object(members) = &st.value else {
        return Err(syntax());
    };
    let mut raw = Raw {
        start: st.start,
        end: st.end,
        sid: None,
        effect: "",
        principal: None,
        actions: None,
        resources: None,
        resource_field: None,
        conditions: Vec::new(),
    };
    let mut effect = None;
    for (key, value) in members {
        let v = &value.value;
        match key.as_str() {
            "Sid" => match v {
                Json::String(s) => raw.sid = Some(s),
                _ => return Err(syntax()),
            },
            "Effect" => match v {
                Json::String(s)
                    if s.eq_ignore_ascii_case("allow") || s.eq_ignore_ascii_case("deny") =>
                {
                    effect = Some(s.as_str())
                }
                _ => return Err(syntax()),
            },
            "Principal" | "NotPrincipal" => {
                if raw.principal.is_some() {
                    return Err(syntax());
                }
                raw.principal = Some((v, key == "NotPrincipal"));
            }
            "Action" | "NotAction" => {
                if raw.actions.is_some() {
                    return Err(syntax());
                }
                raw.actions = Some((string_list(v)?, key == "NotAction"));
            }
            "Resource" | "NotResource" => {
                if raw.resources.is_some() {
                    return Err(syntax());
                }
                raw.resources = Some((string_list(v)?, key == "NotResource"));
                raw.resource_field = Some(if key == "Resource" {
                    "Resource"
                } else {
                    "NotResource"
                });
            }
            "Condition" => {
                let Json::Object(operators) = v else {
                    return Err(syntax());
                };
                for (op, block) in operators {
                    let Json::Object(keys) = &block.value else {
                        return Err(syntax());
                    };
                    // IAM shrugs at an unknown operator with nothing under it.
                    if Operator::parse(op).is_none() && !keys.is_empty() {
                        return Err(syntax());
                    }
                    for (key, values) in keys {
                        raw.conditions
                            .push((op, key, condition_values(&values.value)?));
                    }
                }
            }
            _ => return Err(syntax()),
        }
    }
    raw.effect = effect.ok_or_else(|| MalformedPolicy::new(msg::MISSING_EFFECT))?;
    Ok(raw)
}

fn check_principals(raws: &[Raw<'_>], kind: PolicyKind) -> Result<(), MalformedPolicy> {
    for raw in raws {
        match kind {
            PolicyKind::Identity if raw.principal.is_some() => {
                return Err(MalformedPolicy::new(msg::NO_PRINCIPAL_ALLOWED));
            }
            PolicyKind::Trust if raw.principal.is_none() => {
                return Err(MalformedPolicy::new(msg::TRUST_NO_PRINCIPAL));
            }
            PolicyKind::Trust if raw.resource_field.is_some() => {
                return Err(MalformedPolicy::new(format!(
                    "Has prohibited field {}",
                    raw.resource_field.unwrap_or("Resource")
                )));
            }
            PolicyKind::Resource if raw.principal.is_none() => {
                return Err(MalformedPolicy::new(msg::MISSING_PRINCIPAL));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The checks IAM reports as "The policy failed legacy parsing".
fn check_legacy(raws: &[Raw<'_>]) -> Result<(), MalformedPolicy> {
    let legacy = || MalformedPolicy::new(msg::LEGACY);
    for raw in raws {
        if raw.effect != "Allow" && raw.effect != "Deny" {
            return Err(legacy());
        }
        for (op, key, values) in &raw.conditions {
            if let Some(op) = Operator::parse(op)
                && let Err(ValueError::BadDate) = Condition::new(op, key, values, false)
            {
                return Err(legacy());
            }
        }
        for r in raw.resources.iter().flat_map(|(rs, _)| rs) {
            // A truncated ARN such as `arn:aws:s3::bucket` (too few colons to be an ARN but
            // with an empty segment) is something IAM's old parser could not read.
            if r.starts_with("arn:") && r.matches(':').count() < 5 && r.contains("::") {
                return Err(legacy());
            }
        }
    }
    Ok(())
}

fn check_sids(raws: &[Raw<'_>], kind: PolicyKind) -> Result<(), MalformedPolicy> {
    // IAM allows only letters and digits; resource-based policies belong to other services,
    // several of which allow more (spaces, for example).
    if kind != PolicyKind::Resource
        && raws
            .iter()
            .filter_map(|r| r.sid)
            .any(|s| !s.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(MalformedPolicy::new(msg::SID_FORMAT));
    }
    let mut seen = std::collections::HashSet::new();
    for sid in raws.iter().filter_map(|r| r.sid).filter(|s| !s.is_empty()) {
        if !seen.insert(sid) {
            return Err(MalformedPolicy::new(msg::DUPLICATE_SID));
        }
    }
    Ok(())
}

const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// IAM's complaint about a `Resource` value, if it has one.
fn resource_format_error(r: &str) -> Option<String> {
    if r == "*" {
        return None;
    }
    let parts: Vec<&str> = r.splitn(6, ':').collect();
    if parts.len() < 2 || parts[0] != "arn" {
        return Some(format!("Resource {r} must be in ARN format or \"*\"."));
    }
    let partition = parts[1];
    if !PARTITIONS.contains(&partition) && !partition.contains(['*', '?']) {
        let seg = |i: usize| match parts.get(i) {
            Some(s) if !s.is_empty() || parts.len() > i + 1 => *s,
            _ => "*",
        };
        return Some(format!(
            "Partition \"{partition}\" is not valid for resource \"arn:{partition}:{}:{}:{}:{}\".",
            seg(2),
            seg(3),
            seg(4),
            seg(5)
        ));
    }
    let service = parts.get(2).copied().unwrap_or("");
    if service.is_empty() || service.contains(['*', '?']) {
        return Some(msg::RESOURCE_VENDOR.to_string());
    }
    let region = parts.get(3).copied().unwrap_or("");
    match service {
        "iam" if !region.is_empty() => Some(format!(
            "IAM resource {r} cannot contain region information."
        )),
        // An access point's ARN has its region (`arn:aws:s3:us-east-1:…:accesspoint/name`).
        "s3" if !region.is_empty()
            && !parts
                .get(5)
                .is_some_and(|id| id.starts_with("accesspoint/")) =>
        {
            Some(format!("Resource {r} can not contain region information."))
        }
        _ => None,
    }
}

/// IAM's complaint about an `Action` value, if it has one.
fn action_format_error(a: &str) -> Option<String> {
    if a == "*" {
        return None;
    }
    let mut parts = a.split(':');
    let vendor = parts.next().unwrap_or("");
    match (parts.next(), parts.next()) {
        (None, _) => Some(msg::VENDOR_PREFIX.to_string()),
        (Some(_), Some(_)) => Some(msg::ONE_COLON.to_string()),
        _ if vendor != "*"
            && !vendor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') =>
        {
            Some(format!("Vendor {vendor} is not valid"))
        }
        _ => None,
    }
}

fn compile(
    raw: Raw<'_>,
    version: Version,
    lines: &LineIndex<'_>,
) -> Result<Statement, MalformedPolicy> {
    let variables = version == Version::V2012;
    let (actions, negated) = raw.actions.unwrap_or_default();
    let actions = ActionBlock::new(negated, &actions);
    let resources = raw.resources.map(|(rs, negated)| ResourceBlock {
        negated,
        any: rs.contains(&"*"),
        patterns: rs
            .iter()
            .map(|r| match Template::parse(r).filter(|_| variables) {
                Some(t) => ResourcePattern::Template(t),
                None => ResourcePattern::Fixed(ArnPattern::new(r)),
            })
            .collect(),
    });
    let principal = raw
        .principal
        .map(|(v, negated)| PrincipalSpec::parse(v, negated))
        .transpose()?;
    let mut conditions = Vec::with_capacity(raw.conditions.len());
    for (op, key, values) in &raw.conditions {
        // Unknown operators only get this far with no keys, so there is nothing to skip.
        if let Some(op) = Operator::parse(op) {
            conditions.push(
                Condition::new(op, key, values, variables)
                    .map_err(|_| MalformedPolicy::new(msg::LEGACY))?,
            );
        }
    }
    Ok(Statement {
        sid: raw.sid.map(str::to_string),
        effect: if raw.effect == "Allow" {
            Effect::Allow
        } else {
            Effect::Deny
        },
        principal,
        actions,
        resources,
        conditions,
        start: lines.position(raw.start),
        end: lines.position(raw.end.saturating_sub(1)),
    })
}

/// The size IAM counts against its policy quotas: characters other than white space
/// ("Policy size calculations do not include white space characters"). The quota itself
/// depends on where the policy goes (2,048 for a user's inline policies in total, 6,144 for
/// a managed policy, ...), so checking it is the caller's job.
pub fn policy_size(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}
