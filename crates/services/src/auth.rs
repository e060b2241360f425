//! Who is calling: access keys to identities, signatures checked, and the errors each service
//! answers when they are not right. The server asks this module between decoding a request
//! and dispatching it, in the mode the deployment runs in (`--auth off|verify|enforce`).

use crate::iam::access_keys::{self, AccessKey};
use crate::iam::{GLOBAL, users::User};
use crate::{Caller, Ctx, Principal, Result};
use kumori_protocol::AwsError;
use kumori_protocol::sigv4::SigError;
use serde_json::Value;

/// How much a deployment checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Any key works; a key IAM knows still names its user (as other emulators behave).
    #[default]
    Off,
    /// Signatures are checked against IAM's keys.
    Verify,
    /// Signatures checked, and every action evaluated against the caller's policies.
    Enforce,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Mode, String> {
        match s {
            "off" => Ok(Mode::Off),
            "verify" => Ok(Mode::Verify),
            "enforce" => Ok(Mode::Enforce),
            other => Err(format!(
                "--auth must be off, verify or enforce, not '{other}'"
            )),
        }
    }
}

/// What a key stands for: the caller, the secret that signs for it, and (for temporary
/// credentials) the session token it must come with and when it stops working.
#[derive(Debug, Clone)]
pub struct Identity {
    pub caller: Caller,
    pub secret: String,
    pub active: bool,
    pub session_token: Option<String>,
    /// Seconds since the epoch.
    pub expires_at: Option<u64>,
    /// The role behind temporary role credentials, by name.
    pub role: Option<String>,
    /// Session policies passed to AssumeRole, which narrow the role's permissions.
    pub session_policies: Vec<String>,
    /// When a long-term key was last used, as read with it.
    pub last_used: Option<access_keys::LastUsed>,
}

fn iam_ctx<'a>(ctx: &'a Ctx<'a>) -> Ctx<'a> {
    Ctx {
        region: GLOBAL,
        ..*ctx
    }
}

/// The identity `access_key` belongs to in `ctx`'s account, if any.
pub async fn identify(ctx: &Ctx<'_>, access_key: &str) -> Result<Option<Identity>> {
    let ctx = &iam_ctx(ctx);
    let partition = crate::resource::partition("us-east-1");
    let mut tx = ctx.store.read().await?;
    if let Some(k) = access_keys::find(ctx, &mut tx, access_key).await? {
        return Ok(Some(long_term(ctx, &mut tx, k, partition).await?));
    }
    // Temporary credentials: from STS, or minted by the metadata service for a role.
    let Some(r) = tx
        .get(
            kumori_store::Scope {
                account: ctx.account,
                region: GLOBAL,
            },
            access_key,
        )
        .await?
        .filter(|r| r.kind == crate::sts::CREDENTIAL_KIND)
    else {
        return Ok(None);
    };
    let c: Value = serde_json::from_str(&r.body).unwrap_or_default();
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    let (principal, arn, user_id, role) = if let Some(user) = c["ParentUser"].as_str() {
        let u: Option<User> =
            crate::iam::get(ctx, &mut tx, crate::iam::users::USER, user, false).await?;
        let Some(u) = u else {
            return Ok(None);
        };
        (
            Principal::User {
                name: u.user_name.clone(),
            },
            u.arn,
            u.user_id,
            None,
        )
    } else if c["ParentRoot"].as_bool() == Some(true) {
        (
            Principal::Root,
            format!("arn:{partition}:iam::{}:root", ctx.account),
            ctx.account.to_string(),
            None,
        )
    } else {
        let role_arn = s("RoleArn");
        let role_name = role_arn.rsplit('/').next().unwrap_or_default().to_string();
        let session = s("RoleSessionName");
        let role_id = crate::iam::get::<crate::iam::Role>(
            ctx,
            &mut tx,
            crate::iam::roles::ROLE,
            &role_name,
            false,
        )
        .await?
        .map(|r| r.role_id)
        .unwrap_or_default();
        (
            Principal::AssumedRole {
                role: role_name.clone(),
                session: session.clone(),
            },
            s("AssumedRoleArn"),
            format!("{role_id}:{session}"),
            Some(role_name),
        )
    };
    Ok(Some(Identity {
        caller: Caller {
            account: ctx.account.to_string(),
            principal,
            arn,
            user_id,
            access_key: access_key.to_string(),
            temporary: true,
            verified: false,
            token_issued: c["Issued"].as_str().map(str::to_string),
        },
        secret: s("SecretAccessKey"),
        active: true,
        session_token: Some(s("SessionToken")),
        expires_at: c["ExpiresAt"].as_u64(),
        role,
        session_policies: c["SessionPolicies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect(),
        last_used: None,
    }))
}

async fn long_term(
    ctx: &Ctx<'_>,
    tx: &mut kumori_store::Tx,
    k: AccessKey,
    partition: &str,
) -> Result<Identity> {
    let (principal, arn, user_id) = match &k.user_name {
        Some(name) => {
            let u: Option<User> =
                crate::iam::get(ctx, tx, crate::iam::users::USER, name, false).await?;
            match u {
                Some(u) => (
                    Principal::User {
                        name: u.user_name.clone(),
                    },
                    u.arn,
                    u.user_id,
                ),
                None => (
                    Principal::User { name: name.clone() },
                    String::new(),
                    String::new(),
                ),
            }
        }
        None => (
            Principal::Root,
            format!("arn:{partition}:iam::{}:root", ctx.account),
            ctx.account.to_string(),
        ),
    };
    Ok(Identity {
        caller: Caller {
            account: ctx.account.to_string(),
            principal,
            arn,
            user_id,
            access_key: k.access_key_id.clone(),
            temporary: false,
            verified: false,
            token_issued: None,
        },
        secret: k.secret_access_key,
        active: k.status == "Active",
        session_token: None,
        expires_at: None,
        role: None,
        session_policies: vec![],
        last_used: k.last_used,
    })
}

/// Makes sure the account has a root key when authentication is on: the one the
/// environment gives, or a new one. Returns the pair when it was just made (to print once).
pub async fn ensure_root_key(
    ctx: &Ctx<'_>,
    given: Option<(String, String)>,
) -> Result<Option<(String, String)>> {
    let ctx = &iam_ctx(ctx);
    let mut tx = ctx.store.write().await?;
    if let Some((id, secret)) = given {
        match access_keys::find(ctx, &mut tx, &id).await? {
            Some(k) if k.user_name.is_none() && k.secret_access_key == secret => {}
            Some(_) => {
                return Err(crate::Error(AwsError::internal(format!(
                    "KUMORI_ROOT_ACCESS_KEY_ID {id} is already in use with another secret or user"
                ))));
            }
            None => {
                access_keys::insert_root_key(ctx, &mut tx, &id, &secret).await?;
                tx.commit().await?;
            }
        }
        return Ok(None);
    }
    if !access_keys::keys_of(ctx, &mut tx, None).await?.is_empty() {
        return Ok(None);
    }
    let (id, secret) = access_keys::new_key_pair("AKIA");
    access_keys::insert_root_key(ctx, &mut tx, &id, &secret).await?;
    tx.commit().await?;
    Ok(Some((id, secret)))
}

/// Whether `service` speaks EC2's error dialect (its own codes for authentication).
fn is_ec2(service: &str) -> bool {
    service == "ec2"
}

/// A key IAM does not know, or one that is not active.
pub fn unknown_key(service: &str) -> AwsError {
    if is_ec2(service) {
        AwsError::new(
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        )
        .with_status(401)
    } else if service == "s3" {
        AwsError::new(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        )
        .with_status(403)
    } else {
        AwsError::new(
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
        .with_status(403)
    }
}

/// Temporary credentials past their expiry.
pub fn expired_token(service: &str) -> AwsError {
    if is_ec2(service) {
        AwsError::new("RequestExpired", "Request has expired.").with_status(400)
    } else if service == "s3" {
        AwsError::new("ExpiredToken", "The provided token has expired.").with_status(400)
    } else {
        AwsError::new(
            "ExpiredToken",
            "The security token included in the request is expired",
        )
        .with_status(403)
    }
}

/// A signature problem, in the words of `service`.
pub fn signature_error(service: &str, e: &SigError) -> AwsError {
    match e {
        SigError::Missing => {
            if service == "s3" {
                AwsError::new("AccessDenied", "Access Denied").with_status(403)
            } else {
                AwsError::new(
                    "MissingAuthenticationToken",
                    "Request is missing Authentication Token",
                )
                .with_status(403)
            }
        }
        SigError::Incomplete(m) => {
            if service == "s3" {
                AwsError::new("AuthorizationHeaderMalformed", m.clone()).with_status(400)
            } else {
                AwsError::new("IncompleteSignature", m.clone()).with_status(400)
            }
        }
        SigError::Mismatch { .. } => {
            let message = if service == "s3" {
                "The request signature we calculated does not match the signature you provided. Check your key and signing method."
            } else {
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
            };
            AwsError::new("SignatureDoesNotMatch", message).with_status(403)
        }
        SigError::Skewed { amz_date, now } => {
            if is_ec2(service) {
                AwsError::new("RequestExpired", "Request has expired.").with_status(400)
            } else if service == "s3" {
                AwsError::new(
                    "RequestTimeTooSkewed",
                    "The difference between the request time and the current time is too large.",
                )
                .with_status(403)
            } else if amz_date.as_str() > now.as_str() {
                AwsError::new(
                    "SignatureDoesNotMatch",
                    format!(
                        "Signature not yet current: {amz_date} is still later than {} ({now} + 15 min.)",
                        shifted(now, 15)
                    ),
                )
                .with_status(403)
            } else {
                AwsError::new(
                    "SignatureDoesNotMatch",
                    format!(
                        "Signature expired: {amz_date} is now earlier than {} ({now} - 15 min.)",
                        shifted(now, -15)
                    ),
                )
                .with_status(403)
            }
        }
        SigError::Expired { amz_date, now } => {
            if is_ec2(service) {
                AwsError::new("RequestExpired", "Request has expired.").with_status(400)
            } else if service == "s3" {
                AwsError::new("AccessDenied", "Request has expired").with_status(403)
            } else {
                AwsError::new(
                    "SignatureDoesNotMatch",
                    format!("Signature expired: {amz_date} is now earlier than {now}"),
                )
                .with_status(403)
            }
        }
    }
}

/// `now` moved by `minutes`, in the same basic ISO form.
fn shifted(now: &str, minutes: i64) -> String {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(now, &f)
        .ok()
        .map(|t| t + time::Duration::minutes(minutes))
        .and_then(|t| t.format(&f).ok())
        .unwrap_or_default()
}
