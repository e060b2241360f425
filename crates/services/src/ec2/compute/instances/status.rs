//! Status checks, credit specifications and Windows password data.

use super::*;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreditSpecsRequest {
    #[serde(default)]
    pub(super) instance_ids: Vec<String>,
    #[serde(default)]
    pub(super) filters: Vec<Filter>,
    pub(super) max_results: Option<i64>,
    pub(super) next_token: Option<String>,
    pub(super) dry_run: Option<bool>,
}

pub(super) struct CreditRow<'a>(&'a Instance);

impl Filterable for CreditRow<'_> {
    const FILTERS: &'static [&'static str] = &["instance-id"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "instance-id" => vec![self.0.instance_id.clone()],
            _ => vec![],
        }
    }
}

/// The CPU credit option of burstable instances (others have none and are not listed).
///
/// Not `generic::describe`: a credit specification is a view of a live burstable instance (a
/// terminated one is not found), not a stored kind; it has no tags.
pub async fn describe_instance_credit_specifications(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreditSpecsRequest = input(raw)?;
    check_filters::<CreditRow>(&req.filters)?;
    let all = every_instance(ctx, &req.instance_ids, true).await?;
    dry_run(req.dry_run)?;
    let rows: Vec<&Instance> = all
        .iter()
        .filter(|i| !i.terminated() && i.cpu_credits.is_some())
        .filter(|i| req.instance_ids.is_empty() || req.instance_ids.contains(&i.instance_id))
        .filter(|i| matches(&CreditRow(i), &[], &req.filters))
        .collect();
    let (page, next) = paginate(
        rows,
        |i| i.instance_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let specs: Vec<Value> = page
        .iter()
        .map(|i| json!({ "InstanceId": i.instance_id, "CpuCredits": i.cpu_credits }))
        .collect();
    Ok(crate::ec2::common::page_output(
        "InstanceCreditSpecifications",
        specs,
        next,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct StatusRequest {
    #[serde(default)]
    pub(super) instance_ids: Vec<String>,
    #[serde(default)]
    pub(super) filters: Vec<Filter>,
    pub(super) include_all_instances: Option<bool>,
    pub(super) max_results: Option<i64>,
    pub(super) next_token: Option<String>,
    pub(super) dry_run: Option<bool>,
}

/// An instance and whether its instance check passes (running, and its processes alive
/// where a data plane runs them).
pub(super) struct StatusRow<'a>(&'a Instance, bool);

impl StatusRow<'_> {
    fn instance_check(&self) -> (&'static str, &'static str) {
        match (self.0.state == "running", self.1) {
            (true, true) => ("ok", "passed"),
            (true, false) => ("impaired", "failed"),
            _ => ("not-applicable", "not-applicable"),
        }
    }
    fn system_check(&self) -> (&'static str, &'static str) {
        if self.0.state == "running" {
            ("ok", "passed")
        } else {
            ("not-applicable", "not-applicable")
        }
    }
}

/// Whether an instance's processes are alive (account, instance id), set by a data plane
/// that runs them; `None` when it does not know the instance.
pub type Liveness = Box<dyn Fn(&str, &str) -> Option<bool> + Send + Sync>;

static LIVENESS: std::sync::OnceLock<Liveness> = std::sync::OnceLock::new();

/// Tells EC2 how to see whether instances are alive (once, at start).
pub fn set_liveness(f: Liveness) {
    let _ = LIVENESS.set(f);
}

fn alive(account: &str, i: &Instance) -> bool {
    i.state != "running"
        || LIVENESS
            .get()
            .and_then(|f| f(account, &i.instance_id))
            .unwrap_or(true)
}

impl Filterable for StatusRow<'_> {
    const FILTERS: &'static [&'static str] = &[
        "availability-zone",
        "instance-state-code",
        "instance-state-name",
        "instance-status.reachability",
        "instance-status.status",
        "system-status.reachability",
        "system-status.status",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "availability-zone" => vec![self.0.availability_zone.clone()],
            "instance-state-code" => vec![state_code(&self.0.state).to_string()],
            "instance-state-name" => vec![self.0.state.clone()],
            "instance-status.reachability" => vec![self.instance_check().1.into()],
            "system-status.reachability" => vec![self.system_check().1.into()],
            "instance-status.status" => vec![self.instance_check().0.into()],
            "system-status.status" => vec![self.system_check().0.into()],
            _ => vec![],
        }
    }
}

/// Status checks: a running instance passes both, unless a data plane runs it and its
/// processes are gone (its init crashed): then the instance check fails, as EC2's does when
/// the operating system stops answering. Others are listed only with IncludeAllInstances, as
/// not applicable. (kumori has no hardware to fail, so the system check always passes.)
///
/// Not `generic::describe`: a status is a view of an instance, not a stored kind: running
/// instances only unless IncludeAllInstances, asked for by instance ids with instances' errors,
/// and no tags.
pub async fn describe_instance_status(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StatusRequest = input(raw)?;
    check_filters::<StatusRow>(&req.filters)?;
    let all = every_instance(ctx, &req.instance_ids, false).await?;
    dry_run(req.dry_run)?;
    let every = req.include_all_instances == Some(true);
    let rows: Vec<StatusRow> = all
        .iter()
        .filter(|i| req.instance_ids.is_empty() || req.instance_ids.contains(&i.instance_id))
        .filter(|i| every || i.state == "running")
        .map(|i| StatusRow(i, alive(ctx.account, i)))
        .filter(|r| matches(r, &[], &req.filters))
        .collect();
    let (page, next) = paginate(
        rows,
        |r| r.0.instance_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let check = |(status, reach): (&str, &str)| json!({ "Status": status, "Details": [{ "Name": "reachability", "Status": reach }] });
    let statuses: Vec<Value> = page
        .iter()
        .map(|r| {
            json!({
                "InstanceId": r.0.instance_id,
                "AvailabilityZone": r.0.availability_zone,
                "InstanceState": state_shown(&r.0.state),
                "InstanceStatus": check(r.instance_check()),
                "SystemStatus": check(r.system_check()),
            })
        })
        .collect();
    Ok(crate::ec2::common::page_output(
        "InstanceStatuses",
        statuses,
        next,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PasswordRequest {
    pub(super) instance_id: String,
    pub(super) dry_run: Option<bool>,
}

/// A Windows instance's administrator password, encrypted with its RSA key pair's public key
/// as EC2 does (PKCS#1 v1.5, base64); made once, on first request, and only the encrypted
/// form kept. Other instances have none (an empty `PasswordData`).
pub async fn get_password_data(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: PasswordRequest = input(raw)?;
    check_instance_id(&req.instance_id)?;
    let mut tx = ctx.store.write().await?;
    let mut i: Instance = resource::lock(ctx, &mut tx, &req.instance_id)
        .await?
        .ok_or_else(|| not_found(&req.instance_id))?;
    dry_run(req.dry_run)?;
    if i.password_data.is_none()
        && i.platform.as_deref() == Some("windows")
        && let Some(name) = &i.key_name
    {
        let keys: Vec<KeyPair> = resource::list(ctx, &mut tx).await?;
        if let Some(key) = keys
            .iter()
            .find(|k| &k.key_name == name && k.key_type == "rsa")
        {
            let password = new_password();
            let sealed =
                kumori_keys::encrypt_for(&key.public_key, password.as_bytes()).map_err(|e| {
                    Error(AwsError::internal(format!(
                        "password encryption failed: {e}"
                    )))
                })?;
            i.password_data = Some(base64::engine::general_purpose::STANDARD.encode(sealed));
            resource::update(ctx, &mut tx, &i).await?;
        }
    }
    tx.commit().await?;
    Ok(json!({
        "InstanceId": i.instance_id,
        "Timestamp": i.launch_time,
        "PasswordData": i.password_data.unwrap_or_default(),
    }))
}

/// 32 characters of letters, digits and Windows-friendly symbols.
pub(super) fn new_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!@$%&*()-=+?";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Where an instance's console comes from: set by the data plane when it runs instances
/// (account, instance id → what the instance printed). Without one, instances print nothing.
pub type ConsoleReader = Box<dyn Fn(&str, &str) -> Option<Vec<u8>> + Send + Sync>;

static CONSOLE: std::sync::OnceLock<ConsoleReader> = std::sync::OnceLock::new();

/// Tells EC2 where instances' consoles are (once, at start).
pub fn set_console_reader(reader: ConsoleReader) {
    let _ = CONSOLE.set(reader);
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ConsoleRequest {
    pub(super) instance_id: String,
    pub(super) latest: Option<bool>,
    pub(super) dry_run: Option<bool>,
}

/// What the instance printed to its console (boot messages, host key fingerprints), base64,
/// at most its last 64 KiB as EC2 keeps. An instance the data plane does not run (or has
/// not started yet) has printed nothing: an empty output, as EC2 answers before the first
/// boot messages arrive.
pub async fn get_console_output(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    use base64::Engine as _;
    let req: ConsoleRequest = input(raw)?;
    let _ = req.latest;
    check_instance_id(&req.instance_id)?;
    let mut tx = ctx.store.read().await?;
    let i: Instance = resource::get(ctx, &mut tx, &req.instance_id)
        .await?
        .ok_or_else(|| not_found(&req.instance_id))?;
    drop(tx);
    dry_run(req.dry_run)?;
    let mut out = CONSOLE
        .get()
        .and_then(|read| read(ctx.account, &i.instance_id))
        .unwrap_or_default();
    const KEPT: usize = 64 * 1024;
    if out.len() > KEPT {
        out.drain(..out.len() - KEPT);
    }
    Ok(json!({
        "InstanceId": i.instance_id,
        "Timestamp": kumori_protocol::time::now_iso(),
        "Output": base64::engine::general_purpose::STANDARD.encode(out),
    }))
}
