//! The one error this crate returns: a policy document IAM would refuse.

/// A policy document that IAM would refuse with `MalformedPolicyDocument`.
///
/// `message` is IAM's own wording wherever it is known (so clients that show it, and tests
/// that compare against real AWS, see the same text); where IAM's wording is not known the
/// message says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MalformedPolicy {
    /// The reason, as IAM would phrase it.
    pub message: String,
}

impl MalformedPolicy {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// IAM's messages, kept in one place so tests and code cannot drift apart.
pub(crate) mod msg {
    pub const SYNTAX: &str = "Syntax errors in policy.";
    /// Managed policies: no `Version`, or `2008-10-17`.
    pub const VERSION: &str = "Policy document must be version 2012-10-17 or greater.";
    pub const LEGACY: &str = "The policy failed legacy parsing";
    pub const NO_PRINCIPAL_ALLOWED: &str = "Policy document should not specify a principal.";
    pub const MISSING_EFFECT: &str = "Missing required field Effect";
    pub const MISSING_ACTIONS: &str = "Policy statement must contain actions.";
    pub const MISSING_RESOURCES: &str = "Policy statement must contain resources.";
    pub const DUPLICATE_SID: &str = "Statement IDs (SID) in a single policy must be unique.";
    pub const SID_FORMAT: &str = "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*";
    pub const VENDOR_PREFIX: &str =
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.";
    pub const ONE_COLON: &str = "Actions/Condition can contain only one colon.";
    pub const RESOURCE_VENDOR: &str =
        "Resource vendor must be fully qualified and cannot contain regexes.";
    /// Role trust policies: what IAM says when a statement names no principal.
    pub const TRUST_NO_PRINCIPAL: &str = "Invalid principal in policy: com.amazon.balsa.error.InvalidPolicyException: The passed in policy has a statement with no principals!";
    /// Resource-based policies (S3's wording).
    pub const MISSING_PRINCIPAL: &str = "Missing required field Principal";
}
