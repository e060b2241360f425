//! The AWS IAM policy language and AWS's policy evaluation logic, as pure functions: no I/O,
//! no async, no global state.
//!
//! # How it fits together
//!
//! 1. **Parse once.** [`Policy::parse`] reads a policy document (JSON text), validates it the
//!    way IAM does for the given [`PolicyKind`] — identity policy, role trust policy, or
//!    resource-based policy — and fails with [`MalformedPolicy`] carrying IAM's
//!    `MalformedPolicyDocument` message. The result is compiled: action and resource
//!    patterns become wildcard matchers, condition values are pre-parsed into numbers,
//!    dates, CIDRs, so evaluating costs comparisons, not parsing. Store the `Policy` next to
//!    the document and reuse it.
//! 2. **Describe the request.** A [`Request`] holds the action (`ec2:RunInstances`), the
//!    resource ARN, the [`Principal`] making it, and the request context: condition keys
//!    such as `aws:SourceIp`, all as strings, as AWS gathers them.
//! 3. **Evaluate.** [`evaluate`] takes the request and the [`PolicySets`] that apply — the
//!    principal's identity policies, its permissions boundary, session policies, and the
//!    resource's policy — and returns an [`Evaluation`]: [`Decision::Allowed`],
//!    [`Decision::ExplicitDeny`] or [`Decision::ImplicitDeny`], the statements that decided
//!    it, and the context keys the policies needed but the request lacked (everything IAM's
//!    `SimulatePrincipalPolicy` reports). [`trust_allows`] answers the `AssumeRole` question
//!    against a role's trust policy.
//!
//! # Modules
//!
//! - `document`: parsing and validation into [`Policy`] and [`Statement`].
//! - `glob`: `*`/`?` wildcard matching and segment-wise ARN matching.
//! - `condition`: condition operators, set qualifiers, `IfExists`, typed values.
//! - `variables`: policy variables (`${aws:username}`, defaults, `${*}`).
//! - `principal`: how a policy's `Principal` names a caller.
//! - `request`: the request context.
//! - `eval`: the decision logic.
//! - `json`: a JSON reader that keeps source positions and rejects duplicate keys.
//!
//! The modules are private; each one's documentation (at the top of its source file) states
//! the AWS rules it implements and the AWS documentation page they come from.
//!
//! ```
//! use kumori_policy::{evaluate, Decision, Policy, PolicyKind, PolicySets, Principal, Request};
//!
//! let policy = Policy::parse(r#"{
//!     "Version": "2012-10-17",
//!     "Statement": [{
//!         "Effect": "Allow",
//!         "Action": "s3:*",
//!         "Resource": "arn:aws:s3:::home/${aws:username}/*"
//!     }, {
//!         "Effect": "Deny",
//!         "Action": "*",
//!         "Resource": "*",
//!         "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
//!     }]
//! }"#, PolicyKind::Identity).unwrap();
//!
//! let alice = Principal::user("arn:aws:iam::123456789012:user/alice");
//! let req = Request::new("s3:GetObject", "arn:aws:s3:::home/alice/notes.txt")
//!     .with_principal(alice)
//!     .with_principal_keys() // fills aws:username and friends
//!     .with_context("aws:SourceIp", "10.1.2.3");
//! let sets = PolicySets::new().with_identity("alice-inline", &policy);
//! assert_eq!(evaluate(&req, &sets).decision, Decision::Allowed);
//!
//! let outside = req.clone().with_context_values("aws:SourceIp", ["203.0.113.9"]);
//! assert_eq!(evaluate(&outside, &sets).decision, Decision::ExplicitDeny);
//! ```

mod condition;
mod document;
mod error;
mod eval;
mod glob;
mod json;
mod principal;
mod request;
mod variables;

pub use document::{Effect, Policy, PolicyKind, Statement, Version, policy_size};
pub use error::MalformedPolicy;
pub use eval::{
    Decision, Evaluation, LayerResults, MatchedStatement, NamedPolicy, PolicySets, PolicySource,
    evaluate, trust_allows,
};
pub use glob::Glob;
pub use json::Position;
pub use principal::PrincipalMatch;
pub use request::{Context, Principal, PrincipalKind, Request};
