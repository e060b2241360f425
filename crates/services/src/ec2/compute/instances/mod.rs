//! Instances: RunInstances (images, launch templates, several interfaces, volumes, placement,
//! instance profiles, CPU, hibernation and enclave options), the describes and attributes,
//! and the lifecycle (start, stop, reboot, terminate, monitoring).
//!
//! An instance is a record beside its primary network interface (device 0), which holds its
//! private address and security groups; an address launched public comes from the same pool as
//! Elastic IPs and is released on stop and on termination, as on AWS. Answers show the state a
//! call starts (`pending`, `stopping`, `shutting-down`); describes show where it ends
//! (`running`, `stopped`, `terminated`). A terminated instance stays listed for an hour, as on
//! EC2, and is then unknown.

use super::addresses::{Address, claim_public_ip, release_public_ip};
use super::common::{
    Filter, Filterable, Tag, TagSpecification, check_filters, dry_run, filter_names, invalid_value,
    json_values, matches, paginate, put_tags, tags_by_resource,
};
use super::eni::{self, NetworkInterface};
use super::keypairs::KeyPair;
use super::regions::zones;
use super::sg::SecurityGroup;
use super::subnet::Subnet;
use super::volumes::Volume;
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input};
use base64::Engine;
use kumori_protocol::{AwsError, Output};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use view::{InstanceOut, Parts, instance_out, state_code};

/// User data may be at most 16 KB, before base64.
const USER_DATA_LIMIT: usize = 16 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Instance {
    pub instance_id: String,
    pub reservation_id: String,
    pub owner_id: String,
    pub image_id: String,
    pub instance_type: String,
    pub state: String,
    pub state_transition_reason: String,
    /// When it was terminated (seconds since the epoch): an hour later it is gone.
    #[serde(default)]
    pub terminated_at: Option<u64>,
    /// The ARN of the principal that launched it (none when the caller was unknown): who
    /// may have its metadata endpoint besides the account's root. Internal, never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_by: Option<String>,
    /// A digest of the parameters of the launch that gave it a client token: a retry with the
    /// same token and other parameters is refused, as AWS does. Internal, never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_digest: Option<String>,
    pub launch_time: String,
    pub ami_launch_index: i64,
    pub key_name: Option<String>,
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub private_ip_address: String,
    pub network_interface_id: String,
    /// The public address from the pool, while running; `public_ip_on_launch` says whether a
    /// start gives it a new one.
    pub public_ip_address: Option<String>,
    pub public_ip_on_launch: bool,
    pub architecture: String,
    pub root_device_name: String,
    pub virtualization_type: String,
    pub platform: Option<String>,
    pub platform_details: String,
    pub usage_operation: String,
    pub client_token: Option<String>,
    pub user_data: Option<String>,
    pub metadata: MetadataOptions,
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub shutdown_behavior: String,
    pub monitoring: bool,
    pub ebs_optimized: bool,
    pub tenancy: String,
    pub core_count: i64,
    pub threads_per_core: i64,
    /// `standard` or `unlimited` for burstable types; none for the others.
    #[serde(default)]
    pub cpu_credits: Option<String>,
    /// A Windows instance's administrator password, encrypted for its key pair (base64) the
    /// first time it is asked for; the password itself is never kept.
    #[serde(default)]
    pub password_data: Option<String>,
    /// The IAM instance profile the instance runs with, whose role's credentials its
    /// metadata service hands out.
    #[serde(default)]
    pub iam_instance_profile: Option<IamProfileRef>,
    /// Whether the instance was launched able to hibernate.
    #[serde(default)]
    pub hibernation: bool,
    /// Whether Nitro Enclaves are enabled.
    #[serde(default)]
    pub enclave: bool,
    /// The placement group (by name) and partition the instance was launched into.
    #[serde(default)]
    pub placement_group: Option<String>,
    #[serde(default)]
    pub partition_number: Option<i64>,
    /// Why the instance is where it is, when that is not what its state alone says (a
    /// launch that failed: `Server.InternalError`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<StateReason>,
    /// How many times it was rebooted: the data plane restarts its processes when this moves.
    #[serde(default)]
    pub reboots: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StateReason {
    pub code: String,
    pub message: String,
}

static REAL_BOOTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Says that a data plane boots instances for real (once, at start): launches and starts
/// then leave them `pending` until the data plane sees them up, and stops leave them
/// `stopping` until their processes are gone. Without one, changes take effect at once.
pub fn set_real_boots() {
    REAL_BOOTS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a data plane boots instances for real.
pub fn real_boots() -> bool {
    REAL_BOOTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The state a launch or start leaves an instance in, and a stop.
fn booting_state() -> &'static str {
    if REAL_BOOTS.load(std::sync::atomic::Ordering::Relaxed) {
        "pending"
    } else {
        "running"
    }
}

fn stopping_state() -> &'static str {
    if REAL_BOOTS.load(std::sync::atomic::Ordering::Relaxed) {
        "stopping"
    } else {
        "stopped"
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IamProfileRef {
    pub arn: String,
    pub id: String,
    /// The association (`iip-assoc-…`) that put the profile on the instance.
    #[serde(default)]
    pub association_id: String,
    #[serde(default)]
    pub associated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetadataOptions {
    pub http_tokens: String,
    pub http_put_response_hop_limit: i64,
    pub http_endpoint: String,
    pub instance_metadata_tags: String,
    /// Whether the IPv6 metadata endpoint is on; documents stored before it was kept say
    /// nothing, which is EC2's default.
    #[serde(default = "disabled")]
    pub http_protocol_ipv6: String,
}

fn disabled() -> String {
    "disabled".into()
}

/// How long a terminated instance stays listed (AWS: "about an hour").
pub const TERMINATED_VISIBLE_SECS: u64 = 3600;

impl Instance {
    fn terminated(&self) -> bool {
        self.state == "terminated"
    }
    /// Terminated long enough ago that EC2 no longer knows it: not listed, not found.
    fn gone(&self, now: u64) -> bool {
        gone_at(&self.state, self.terminated_at, now)
    }
}

fn gone_at(state: &str, terminated_at: Option<u64>, now: u64) -> bool {
    state == "terminated" && terminated_at.is_some_and(|t| now >= t + TERMINATED_VISIBLE_SECS)
}

impl Resource for Instance {
    const KIND: &'static str = "instance";
    fn id(&self) -> &str {
        &self.instance_id
    }
    /// A live instance lives in its subnet; a terminated one only lingers in listings.
    fn parent(&self) -> Option<&str> {
        (!self.terminated()).then_some(self.subnet_id.as_str())
    }
}

fn state_shown(state: &str) -> Value {
    json!({ "Code": state_code(state), "Name": state })
}

fn not_found(id: &str) -> Error {
    Error::new(
        "InvalidInstanceID.NotFound",
        format!("The instance ID '{id}' does not exist"),
    )
}

fn check_instance_id(id: &str) -> Result<()> {
    if !id.starts_with("i-") {
        return Err(Error::new(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{id}\""),
        ));
    }
    Ok(())
}

/// An instance as EC2 shows it, with its interfaces (and what addresses point at the
/// primary), volumes and tags ([`view`]).
#[allow(clippy::too_many_arguments)]
fn shown(
    ctx: &Ctx<'_>,
    i: &Instance,
    eni: Option<&NetworkInterface>,
    others: &[&NetworkInterface],
    eip: Option<&Address>,
    volumes: &[&Volume],
    tags: &[Tag],
    state: &str,
) -> Value {
    let parts = Parts {
        region: ctx.region,
        account: ctx.account,
        eni,
        others: others.to_vec(),
        eip,
        volumes,
        tags,
        state,
    };
    serde_json::to_value(instance_out(i, &parts)).unwrap_or(Value::Null)
}

mod attributes;
mod describe;
mod launch;
mod lifecycle;
mod status;
mod sweep;
pub mod view;
pub use attributes::*;
pub use describe::*;
pub use launch::*;
pub use lifecycle::*;
pub use status::*;
pub use sweep::*;

/// Every instance of the region, after checking that each id in `ids` is well formed and
/// names one (a live one, when `live`).
async fn every_instance(ctx: &Ctx<'_>, ids: &[String], live: bool) -> Result<Vec<Instance>> {
    for id in ids {
        check_instance_id(id)?;
    }
    let mut tx = ctx.store.read().await?;
    let all: Vec<Instance> = resource::list(ctx, &mut tx).await?;
    drop(tx);
    if let Some(missing) = ids.iter().find(|id| {
        !all.iter()
            .any(|i| &i.instance_id == *id && !(live && i.terminated()))
    }) {
        return Err(not_found(missing));
    }
    Ok(all)
}

#[cfg(test)]
mod expiry_tests {
    use super::*;

    #[test]
    fn a_terminated_instance_is_listed_for_an_hour_then_gone() {
        let at = 1_800_000_000;
        assert!(!gone_at("terminated", Some(at), at));
        assert!(!gone_at(
            "terminated",
            Some(at),
            at + TERMINATED_VISIBLE_SECS - 1
        ));
        assert!(gone_at(
            "terminated",
            Some(at),
            at + TERMINATED_VISIBLE_SECS
        ));
        // Records from before the time was kept, and live instances, never go.
        assert!(!gone_at(
            "terminated",
            None,
            at + 10 * TERMINATED_VISIBLE_SECS
        ));
        assert!(!gone_at(
            "running",
            Some(at),
            at + 10 * TERMINATED_VISIBLE_SECS
        ));
    }
}
