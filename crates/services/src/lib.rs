//! kumori's AWS services: one module per service, with handlers named after the operations they
//! implement. Handlers take the decoded input value (keyed by the model's member names), work
//! on typed resources in one store transaction, and return the output value; the protocol
//! layer does all the wire work on either side.

pub mod auth;
pub mod authz;
pub mod autoscaling;
pub mod ec2;
pub mod elbv2;
pub mod housekeeping;
pub mod iam;
pub mod kit;
pub mod rds;
pub mod resource;
pub mod route53;
pub mod secretsmanager;
pub mod sts;

use kumori_protocol::{AwsError, Call, Output};
use kumori_store::{Scope, Store, StoreError};
use serde_json::Value;

/// What every handler may use: the store, where the call lands, the quotas in force and
/// who is calling.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub account: &'a str,
    pub region: &'a str,
    pub limits: &'a Limits,
    /// The caller as IAM knows it; `None` is the account's root (kumori's own tools, and
    /// requests whose key IAM does not know while authentication is off).
    pub caller: Option<&'a Caller>,
}

impl<'a> Ctx<'a> {
    /// kumori itself acting in an account and region (the data plane, housekeeping, its
    /// own tools): as the account's root.
    pub fn root(store: &'a Store, account: &'a str, region: &'a str, limits: &'a Limits) -> Self {
        Ctx {
            store,
            account,
            region,
            limits,
            caller: None,
        }
    }
}

/// Which kind of IAM identity made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Root,
    User { name: String },
    AssumedRole { role: String, session: String },
}

/// Who made a request: the identity its access key belongs to.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: String,
    pub principal: Principal,
    /// `arn:aws:iam::…:user/…`, `arn:aws:sts::…:assumed-role/…/…` or `arn:aws:iam::…:root`.
    pub arn: String,
    /// `AIDA…` for a user, `AROA…:session` for a role session, the account id for root.
    pub user_id: String,
    pub access_key: String,
    /// Temporary credentials (from STS or the metadata service).
    pub temporary: bool,
    /// Whether the request's signature was checked (authentication on).
    pub verified: bool,
    /// When temporary credentials were issued (`aws:TokenIssueTime`).
    pub token_issued: Option<String>,
}

/// Service quotas, with AWS's defaults; a deployment may raise or lower them.
#[derive(Debug, Clone)]
pub struct Limits {
    /// VPCs per region (`VpcLimitExceeded`).
    pub vpcs_per_region: usize,
    /// Elastic IPs per region (`AddressLimitExceeded`).
    pub addresses_per_region: usize,
    /// VPC security groups per region (`SecurityGroupLimitExceeded`).
    pub security_groups_per_region: usize,
    /// Inbound, and separately outbound, rules per security group
    /// (`RulesPerSecurityGroupLimitExceeded`).
    pub rules_per_group: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            vpcs_per_region: 5,
            addresses_per_region: 5,
            security_groups_per_region: 2500,
            rules_per_group: 60,
        }
    }
}

impl Ctx<'_> {
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            account: self.account,
            region: self.region,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            // AWS's answer when a service cannot serve now: SDKs retry it by themselves.
            StoreError::Unavailable(why) => Error(
                AwsError::new(
                    "ServiceUnavailable",
                    format!("kumori's database is unavailable; retry shortly ({why})"),
                )
                .with_status(503),
            ),
            e => Error(AwsError::internal(format!("kumori's store failed: {e}"))),
        }
    }
}

/// A handler's error: always an AWS error by the time it leaves the service.
#[derive(Debug)]
pub struct Error(pub AwsError);

impl From<AwsError> for Error {
    fn from(e: AwsError) -> Self {
        Error(e)
    }
}

impl Error {
    /// A client error with AWS's `code`: HTTP 400, or the status the service's model
    /// declares for that code (applied when the answer is written).
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error(AwsError::new(code, message))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Runs `call` against the service it belongs to.
pub async fn dispatch(ctx: &Ctx<'_>, call: &Call) -> std::result::Result<Output, AwsError> {
    let op = call.operation.name.as_str();
    let result = kit::run(ctx, call.service(), op, &call.input).await;
    match result {
        Some(Ok(v)) => Ok(v),
        // The query services word a missing member as a validation error.
        Some(Err(Error(e))) if e.code == "MissingParameter" && call.service() != "ec2" => {
            let member = e.message.rsplit(' ').next().unwrap_or_default();
            // The JSON protocols' services call it ValidationException.
            let code = if call.model.protocol == kumori_protocol::Protocol::Json {
                "ValidationException"
            } else if call.service() == "route53" {
                "InvalidInput"
            } else {
                "ValidationError"
            };
            Err(AwsError::new(
                code,
                format!(
                    "1 validation error detected: Value null at '{member}' failed to satisfy \
                     constraint: Member must not be null"
                ),
            ))
        }
        Some(Err(Error(e))) => Err(e),
        None => Err(AwsError::not_implemented(call.service(), op)),
    }
}

/// Reads a handler's typed input from the decoded value. The protocol layer has already
/// checked it against the model, so a member the handler needs but the model leaves
/// optional (a filter without `Name`, a tag without `Key`) is the caller's omission, answered
/// as AWS answers a missing parameter; any other misfit is kumori's bug.
pub fn input<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T> {
    #[cfg(test)]
    let v = &kit::recording::Recorder(v);
    T::deserialize(v).map_err(|e| {
        let text = e.to_string();
        match text
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(member) => Error::new(
                "MissingParameter",
                format!("The request must contain the parameter {member}"),
            ),
            None => Error(AwsError::internal(format!(
                "input does not fit its handler: {text}"
            ))),
        }
    })
}

/// Runs CPU-bound work (filtering thousands of resources against a request's filters) off
/// the async workers when `heavy`: tokio hands the worker's other requests to another
/// thread meanwhile, so one expensive describe cannot stall every other caller.
pub fn cpu_bound<T>(heavy: bool, f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if heavy && h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Turns a typed output into the value the protocol layer serializes.
pub fn output<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error(AwsError::internal(e.to_string())))
}
