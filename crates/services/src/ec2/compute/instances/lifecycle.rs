//! The lifecycle: start, stop, reboot, terminate and monitoring.

use super::*;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct StateChangeRequest {
    pub(super) instance_ids: Vec<String>,
    pub(super) force: Option<bool>,
    pub(super) dry_run: Option<bool>,
}

/// Locks every instance named, refusing unknown ids before anything changes.
pub(super) async fn lock_all(ctx: &Ctx<'_>, tx: &mut Tx, ids: &[String]) -> Result<Vec<Instance>> {
    let mut out = Vec::new();
    for id in ids {
        check_instance_id(id)?;
        let i: Instance = resource::lock(ctx, tx, id)
            .await?
            .filter(|i: &Instance| !i.gone(kumori_protocol::time::now_unix()))
            .ok_or_else(|| not_found(id))?;
        out.push(i);
    }
    Ok(out)
}

pub(super) fn change(i: &Instance, previous: &str, current: &str) -> Value {
    json!({
        "InstanceId": i.instance_id,
        "PreviousState": state_shown(previous),
        "CurrentState": state_shown(current),
    })
}

/// Terminates `i` inside `tx`: its public address, interfaces and volumes let go.
pub(crate) async fn terminate_one(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    i: &mut Instance,
    reason: String,
) -> Result<()> {
    if let Some(ip) = i.public_ip_address.take() {
        release_public_ip(tx, &ip).await?;
    }
    eni::detach_all(ctx, tx, &i.instance_id).await?;
    crate::ec2::volumes::release_for_terminated(ctx, tx, &i.instance_id).await?;
    i.state = "terminated".into();
    i.terminated_at = Some(kumori_protocol::time::now_unix());
    i.state_transition_reason = reason;
    resource::update(ctx, tx, i).await
}

pub async fn terminate_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StateChangeRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let instances = lock_all(ctx, &mut tx, &req.instance_ids).await?;
    if let Some(i) = instances
        .iter()
        .find(|i| i.disable_api_termination && !i.terminated())
    {
        return Err(Error::new(
            "OperationNotPermitted",
            format!(
                "The instance '{}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.",
                i.instance_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    let mut changes = Vec::new();
    for mut i in instances {
        let previous = i.state.clone();
        if i.terminated() {
            changes.push(change(&i, &previous, "terminated"));
            continue;
        }
        let reason = format!(
            "User initiated ({})",
            kumori_protocol::time::now_iso()
                .replace('T', " ")
                .replace(".000Z", " GMT")
        );
        terminate_one(ctx, &mut tx, &mut i, reason).await?;
        changes.push(change(&i, &previous, "shutting-down"));
    }
    tx.commit().await?;
    Ok(json!({ "TerminatingInstances": changes }))
}

pub async fn stop_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StateChangeRequest = input(raw)?;
    let _ = req.force;
    let mut tx = ctx.store.write().await?;
    let instances = lock_all(ctx, &mut tx, &req.instance_ids).await?;
    for i in &instances {
        if i.disable_api_stop && i.state == "running" {
            return Err(Error::new(
                "OperationNotPermitted",
                format!(
                    "The instance '{}' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.",
                    i.instance_id
                ),
            ));
        }
        if i.terminated() {
            return Err(Error::new(
                "IncorrectInstanceState",
                format!(
                    "This instance '{}' is not in a state from which it can be stopped.",
                    i.instance_id
                ),
            ));
        }
    }
    dry_run(req.dry_run)?;
    let mut changes = Vec::new();
    for mut i in instances {
        let previous = i.state.clone();
        if previous == "stopped" {
            changes.push(change(&i, &previous, "stopped"));
            continue;
        }
        // The launch-time public address goes back to the pool; an Elastic IP stays.
        if let Some(ip) = i.public_ip_address.take() {
            release_public_ip(&mut tx, &ip).await?;
            set_auto_ip(ctx, &mut tx, &i.network_interface_id, None).await?;
        }
        i.state = stopping_state().into();
        i.state_transition_reason = "User initiated".into();
        resource::update(ctx, &mut tx, &i).await?;
        changes.push(change(&i, &previous, "stopping"));
    }
    tx.commit().await?;
    Ok(json!({ "StoppingInstances": changes }))
}

/// RebootInstances: a running instance restarts in place and keeps everything (addresses
/// included); anything not running cannot be rebooted.
pub async fn reboot_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StateChangeRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let instances = lock_all(ctx, &mut tx, &req.instance_ids).await?;
    if let Some(i) = instances.iter().find(|i| i.state != "running") {
        return Err(Error::new(
            "IncorrectInstanceState",
            format!(
                "The instance '{}' is not in a state from which it can be rebooted.",
                i.instance_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    // Counted, so that a data plane restarts the instance's processes.
    for mut i in instances {
        i.reboots += 1;
        resource::update(ctx, &mut tx, &i).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct MonitorRequest {
    pub(super) instance_ids: Vec<String>,
    pub(super) dry_run: Option<bool>,
}

/// MonitorInstances and UnmonitorInstances: detailed monitoring on or off. The answer shows
/// where the change starts (`pending`, `disabling`); describes show where it ends.
pub(super) async fn set_monitoring(ctx: &Ctx<'_>, raw: &Value, on: bool) -> Result<Value> {
    let req: MonitorRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let instances = lock_all(ctx, &mut tx, &req.instance_ids).await?;
    if let Some(i) = instances.iter().find(|i| i.terminated()) {
        return Err(Error::new(
            "IncorrectInstanceState",
            format!("The instance '{}' is terminated.", i.instance_id),
        ));
    }
    dry_run(req.dry_run)?;
    let mut out = Vec::new();
    for mut i in instances {
        i.monitoring = on;
        resource::update(ctx, &mut tx, &i).await?;
        out.push(json!({
            "InstanceId": i.instance_id,
            "Monitoring": { "State": if on { "pending" } else { "disabling" } },
        }));
    }
    tx.commit().await?;
    Ok(json!({ "InstanceMonitorings": out }))
}

pub async fn monitor_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    set_monitoring(ctx, raw, true).await
}

pub async fn unmonitor_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    set_monitoring(ctx, raw, false).await
}

pub async fn start_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StateChangeRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let instances = lock_all(ctx, &mut tx, &req.instance_ids).await?;
    // A stopping instance is started once it has stopped, as EC2 asks.
    if let Some(i) = instances
        .iter()
        .find(|i| i.terminated() || i.state == "stopping")
    {
        return Err(Error::new(
            "IncorrectInstanceState",
            format!(
                "The instance '{}' is not in a state from which it can be started.",
                i.instance_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    let mut changes = Vec::new();
    for mut i in instances {
        let previous = i.state.clone();
        if previous == "running" || previous == "pending" {
            changes.push(change(&i, &previous, &previous));
            continue;
        }
        // A new public address, unless an Elastic IP holds the interface.
        let addresses: Vec<Address> = resource::list(ctx, &mut tx).await?;
        let has_eip = addresses.iter().any(|a| {
            a.association
                .as_ref()
                .is_some_and(|x| x.network_interface_id == i.network_interface_id)
        });
        if i.public_ip_on_launch && !has_eip {
            let ip = claim_public_ip(&mut tx).await?;
            set_auto_ip(ctx, &mut tx, &i.network_interface_id, Some(ip.clone())).await?;
            i.public_ip_address = Some(ip);
        }
        i.state = booting_state().into();
        i.state_transition_reason = String::new();
        i.state_reason = None;
        resource::update(ctx, &mut tx, &i).await?;
        changes.push(change(&i, &previous, "pending"));
    }
    tx.commit().await?;
    Ok(json!({ "StartingInstances": changes }))
}

pub(super) async fn set_auto_ip(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    eni_id: &str,
    ip: Option<String>,
) -> Result<()> {
    if let Some(mut e) = resource::get::<NetworkInterface>(ctx, tx, eni_id).await? {
        e.auto_public_ip = ip;
        resource::update(ctx, tx, &e).await?;
    }
    Ok(())
}
