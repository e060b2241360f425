//! The narrow, typed way other services reach EC2: launch planned instances, terminate them,
//! make and remove the interfaces AWS manages for a service, and read where instances are.
//!
//! Architecture invariant: Auto Scaling, load balancers, RDS and the data plane call EC2
//! through this module only, never EC2's internals, so EC2's rules (quotas, address
//! allocation, launch-template merging, the checks RunInstances makes) hold for what they
//! make exactly as for a user's own calls.

use super::eni;
use super::instances::Instance;
use crate::kit::Tag;
use crate::resource;
use crate::{Ctx, Result};
use kumori_store::Tx;
use serde_json::{Value, json};

/// Which launch template, and which of its versions (`$Default`, `$Latest` or a number).
#[derive(Debug, Clone)]
pub struct TemplateRef {
    /// `lt-…` or the template's name.
    pub id_or_name: String,
    pub version: Option<String>,
}

/// Instances to launch, as Auto Scaling plans them.
#[derive(Debug, Clone, Default)]
pub struct LaunchPlan {
    pub count: u32,
    pub template: Option<TemplateRef>,
    /// Overrides of the template (or the whole launch, without one).
    pub image_id: Option<String>,
    pub instance_type: Option<String>,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    /// An instance profile's name or ARN.
    pub instance_profile: Option<String>,
    pub tags: Vec<Tag>,
    /// Makes the launch idempotent, as RunInstances' client token does.
    pub client_token: Option<String>,
}

/// What a launch made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    pub reservation_id: String,
    pub instance_ids: Vec<String>,
}

/// Launches `plan` with every check RunInstances makes, in its one transaction.
pub async fn launch(ctx: &Ctx<'_>, plan: &LaunchPlan) -> Result<Launched> {
    let mut input = json!({ "MinCount": plan.count, "MaxCount": plan.count });
    let mut put = |k: &str, v: Value| input[k] = v;
    if let Some(t) = &plan.template {
        let mut spec = if t.id_or_name.starts_with("lt-") {
            json!({ "LaunchTemplateId": t.id_or_name })
        } else {
            json!({ "LaunchTemplateName": t.id_or_name })
        };
        if let Some(v) = &t.version {
            spec["Version"] = json!(v);
        }
        put("LaunchTemplate", spec);
    }
    for (k, v) in [
        ("ImageId", &plan.image_id),
        ("InstanceType", &plan.instance_type),
        ("SubnetId", &plan.subnet_id),
        ("KeyName", &plan.key_name),
        ("UserData", &plan.user_data),
        ("ClientToken", &plan.client_token),
    ] {
        if let Some(v) = v {
            put(k, json!(v));
        }
    }
    if !plan.security_group_ids.is_empty() {
        put("SecurityGroupIds", json!(plan.security_group_ids));
    }
    if let Some(p) = &plan.instance_profile {
        let key = if p.starts_with("arn:") { "Arn" } else { "Name" };
        put("IamInstanceProfile", json!({ key: p }));
    }
    if !plan.tags.is_empty() {
        put(
            "TagSpecifications",
            json!([{ "ResourceType": "instance", "Tags": plan.tags }]),
        );
    }
    let answer = super::instances::run_instances(ctx, &input).await?;
    Ok(Launched {
        reservation_id: answer["ReservationId"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        instance_ids: answer["Instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["InstanceId"].as_str().map(str::to_string))
            .collect(),
    })
}

/// Terminates instances, as TerminateInstances does.
pub async fn terminate(ctx: &Ctx<'_>, instance_ids: &[String]) -> Result<()> {
    super::instances::terminate_instances(ctx, &json!({ "InstanceIds": instance_ids })).await?;
    Ok(())
}

/// Where an instance is, for health checks and the data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub instance_id: String,
    pub state: String,
    pub private_ip: String,
    pub public_ip: Option<String>,
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub instance_type: String,
    pub image_id: String,
}

/// Where each of `instance_ids` is (unknown ids are left out).
pub async fn placements(ctx: &Ctx<'_>, instance_ids: &[String]) -> Result<Vec<Placement>> {
    let mut tx = ctx.store.read().await?;
    let mut out = Vec::new();
    for id in instance_ids {
        if let Some(i) = resource::get::<Instance>(ctx, &mut tx, id).await? {
            out.push(placed(i));
        }
    }
    Ok(out)
}

/// An interface AWS manages for a service (a load balancer's node, a database's endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedInterface {
    pub network_interface_id: String,
    pub private_ip: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
}

/// Makes a managed interface in `subnet_id` inside the caller's write transaction, on the
/// subnet's lowest free address (`interface_type` as EC2 shows it: `network_load_balancer`,
/// `interface`, …).
pub async fn create_managed_interface(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    subnet_id: &str,
    interface_type: &str,
    description: String,
) -> Result<ManagedInterface> {
    let eni = eni::create_managed(ctx, tx, subnet_id, interface_type, description).await?;
    Ok(ManagedInterface {
        private_ip: eni.private_ip_address.clone(),
        network_interface_id: eni.network_interface_id,
        subnet_id: eni.subnet_id,
        vpc_id: eni.vpc_id,
        availability_zone: eni.availability_zone,
    })
}

/// Gives a managed interface security groups and, when `public`, a public address (what
/// an internet-facing load balancer's nodes have); answers that address.
pub async fn dress_managed_interface(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    id: &str,
    groups: &[String],
    public: bool,
) -> Result<Option<String>> {
    eni::dress_managed(ctx, tx, id, groups, public).await
}

/// A subnet as another service needs it: where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetPlace {
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub cidr_block: String,
}

/// The subnet `id`, read in the caller's transaction.
pub async fn subnet(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Option<SubnetPlace>> {
    Ok(resource::get::<super::subnet::Subnet>(ctx, tx, id)
        .await?
        .map(|s| SubnetPlace {
            subnet_id: s.subnet_id,
            vpc_id: s.vpc_id,
            availability_zone: s.availability_zone,
            cidr_block: s.cidr_block,
        }))
}

/// The VPC of security group `id`, when the group exists.
pub async fn security_group_vpc(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Option<String>> {
    Ok(resource::get::<super::sg::SecurityGroup>(ctx, tx, id)
        .await?
        .map(|g| g.vpc_id))
}

/// The id of `vpc_id`'s default security group.
pub async fn default_security_group(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    vpc_id: &str,
) -> Result<Option<String>> {
    let g: Option<super::sg::SecurityGroup> =
        resource::child_where(ctx, tx, vpc_id, "GroupName", "default").await?;
    Ok(g.map(|g| g.group_id))
}

/// Whether `vpc_id` exists.
pub async fn vpc_exists(ctx: &Ctx<'_>, tx: &mut Tx, vpc_id: &str) -> Result<bool> {
    Ok(resource::get::<super::vpc::Vpc>(ctx, tx, vpc_id)
        .await?
        .is_some())
}

/// Where instance `id` is, read in the caller's transaction.
pub async fn placement(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Option<Placement>> {
    Ok(resource::get::<Instance>(ctx, tx, id).await?.map(placed))
}

fn placed(i: Instance) -> Placement {
    Placement {
        instance_id: i.instance_id,
        state: i.state,
        private_ip: i.private_ip_address,
        public_ip: i.public_ip_address,
        subnet_id: i.subnet_id,
        vpc_id: i.vpc_id,
        availability_zone: i.availability_zone,
        instance_type: i.instance_type,
        image_id: i.image_id,
    }
}

/// A launch template named by id or name, as `(id, name)`, when it exists and has the
/// version asked for (`$Default`, `$Latest` or a number).
pub async fn launch_template(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    id: Option<&str>,
    name: Option<&str>,
    version: Option<&str>,
) -> Result<(String, String)> {
    let spec = json!({
        "LaunchTemplateId": id,
        "LaunchTemplateName": name,
        "Version": version.unwrap_or("$Default"),
    });
    let (_, id, _) = super::launch_templates::data_for_launch(ctx, tx, &spec).await?;
    let t: super::launch_templates::LaunchTemplate = resource::get(ctx, tx, &id)
        .await?
        .ok_or_else(|| super::launch_templates::id_not_found(&id))?;
    Ok((t.launch_template_id, t.launch_template_name))
}

/// Removes a managed interface inside the caller's write transaction, giving its address
/// back and leaving routes through it `blackhole`.
pub async fn delete_managed_interface(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<()> {
    eni::remove(ctx, tx, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn launch_place_and_terminate_through_the_api() {
        let store = kumori_store::Store::open_memory().await.unwrap();
        let limits = crate::Limits::default();
        let ctx = Ctx::root(&store, "000000000000", "us-east-1", &limits);
        super::super::default_vpc::ensure(&ctx).await.unwrap();
        let image = kumori_catalog::public_images("us-east-1")
            .into_iter()
            .find(|i| i["Architecture"] == "x86_64")
            .map(|i| i["ImageId"].as_str().unwrap().to_string())
            .unwrap();
        let plan = LaunchPlan {
            count: 2,
            image_id: Some(image),
            instance_type: Some("t3.micro".into()),
            tags: vec![Tag {
                key: "aws:autoscaling:groupName".into(),
                value: "web".into(),
            }],
            client_token: Some("asg-web-1".into()),
            ..Default::default()
        };
        let launched = launch(&ctx, &plan).await.unwrap();
        assert_eq!(launched.instance_ids.len(), 2);
        // The client token makes it idempotent, as RunInstances' is.
        assert_eq!(launch(&ctx, &plan).await.unwrap(), launched);
        let placed = placements(&ctx, &launched.instance_ids).await.unwrap();
        assert_eq!(placed.len(), 2);
        assert!(placed.iter().all(|p| p.state == "running"));
        assert_ne!(placed[0].private_ip, placed[1].private_ip);

        let subnet = placed[0].subnet_id.clone();
        let mut tx = store.write().await.unwrap();
        let nic = create_managed_interface(&ctx, &mut tx, &subnet, "interface", "lb".into())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(placed.iter().all(|p| p.private_ip != nic.private_ip));
        let mut tx = store.write().await.unwrap();
        delete_managed_interface(&ctx, &mut tx, &nic.network_interface_id)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        terminate(&ctx, &launched.instance_ids).await.unwrap();
        let placed = placements(&ctx, &launched.instance_ids).await.unwrap();
        assert!(placed.iter().all(|p| p.state == "terminated"));
    }
}

/// An instance as the data plane runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// The account and region it belongs to (its metadata service answers as it).
    pub account: String,
    pub region: String,
    pub instance_id: String,
    pub state: String,
    pub vpc_id: String,
    /// Its primary interface, whose namespace it runs in.
    pub interface_id: String,
    pub private_ip: String,
    pub instance_type: String,
    /// The image's name (its family decides the default user).
    pub image_name: String,
    /// The key pair's OpenSSH public key, when it was launched with one.
    pub public_key: Option<String>,
    /// User data, decoded.
    pub user_data: Option<Vec<u8>>,
    /// How many times it was rebooted.
    pub reboots: u64,
    /// The captured layers its root runs on, bottom first (image ids; none for a public image).
    pub layers: Vec<String>,
    /// EBS volumes attached besides the root: (volume id, device name, size in GiB).
    pub disks: Vec<(String, String, u64)>,
}

/// Every instance of every account and region that is not terminated, with what the data
/// plane needs to run it.
pub async fn machines(store: &kumori_store::Store, limits: &crate::Limits) -> Result<Vec<Machine>> {
    use super::keypairs::KeyPair;
    use base64::Engine as _;
    let scopes = {
        let mut tx = store.read().await?;
        tx.scopes_with(<Instance as resource::Resource>::KIND)
            .await?
    };
    let mut out = Vec::new();
    for (account, region) in &scopes {
        let ctx = Ctx::root(store, account, region, limits);
        let mut tx = store.read().await?;
        let instances: Vec<Instance> = resource::list(&ctx, &mut tx).await?;
        let keys: Vec<KeyPair> = resource::list(&ctx, &mut tx).await?;
        let volumes: Vec<super::volumes::Volume> = resource::list(&ctx, &mut tx).await?;
        for i in instances.into_iter().filter(|i| i.state != "terminated") {
            let image_name = super::images::find(&ctx, &mut tx, &i.image_id)
                .await
                .ok()
                .and_then(|v| v["Name"].as_str().map(str::to_string))
                .unwrap_or_default();
            let layers = super::images::layers_of(&ctx, &mut tx, &i.image_id)
                .await
                .unwrap_or_default();
            let disks = volumes
                .iter()
                .flat_map(|v| v.attachments.iter().map(move |a| (v, a)))
                .filter(|(_, a)| a.instance_id == i.instance_id && a.device != i.root_device_name)
                .map(|(v, a)| (v.volume_id.clone(), a.device.clone(), v.size.max(1) as u64))
                .collect();
            out.push(Machine {
                disks,
                layers,
                account: account.clone(),
                region: region.clone(),
                reboots: i.reboots,
                public_key: i.key_name.as_ref().and_then(|n| {
                    keys.iter()
                        .find(|k| &k.key_name == n)
                        .map(|k| k.public_key.clone())
                }),
                user_data: i
                    .user_data
                    .as_deref()
                    .and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok()),
                vpc_id: i.vpc_id,
                instance_id: i.instance_id,
                state: i.state,
                interface_id: i.network_interface_id,
                private_ip: i.private_ip_address,
                instance_type: i.instance_type,
                image_name,
            });
        }
    }
    Ok(out)
}

/// What the data plane saw of an instance's processes.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Its SSH server accepted: `pending` becomes `running`.
    Up,
    /// Its processes are gone: `stopping` becomes `stopped`.
    Down,
    /// It could not be started (its image's root filesystem could not be built): a pending
    /// instance is terminated, with EC2's state reason and why.
    Failed(String),
}

/// Records what the data plane saw, in one transaction, when the instance is still where
/// it was (a user's change in between wins). Answers whether the state moved.
pub async fn machine_seen(store: &kumori_store::Store, m: &Machine, seen: Seen) -> Result<bool> {
    let limits = crate::Limits::default();
    let ctx = Ctx::root(store, &m.account, &m.region, &limits);
    let mut tx = store.write().await?;
    let Some(mut i) = resource::lock::<Instance>(&ctx, &mut tx, &m.instance_id).await? else {
        return Ok(false);
    };
    match (&seen, i.state.as_str()) {
        (Seen::Up, "pending") => {
            i.state = "running".into();
            resource::update(&ctx, &mut tx, &i).await?;
        }
        (Seen::Down, "stopping") => {
            i.state = "stopped".into();
            resource::update(&ctx, &mut tx, &i).await?;
        }
        (Seen::Failed(why), "pending") => {
            i.state_reason = Some(super::instances::StateReason {
                code: "Server.InternalError".into(),
                message: format!("Server.InternalError: Internal error on launch ({why})"),
            });
            super::instances::terminate_one(
                &ctx,
                &mut tx,
                &mut i,
                "Server.InternalError: Internal error on launch".into(),
            )
            .await?;
        }
        _ => return Ok(false),
    }
    tx.commit().await?;
    Ok(true)
}

/// An image whose instance's root volume the data plane is to capture (CreateImage).
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub account: String,
    pub region: String,
    pub image_id: String,
    pub instance_id: String,
}

/// Images waiting for their capture, and every layer any image still runs on (the data
/// plane removes the others).
pub async fn captures(
    store: &kumori_store::Store,
) -> Result<(Vec<Capture>, std::collections::BTreeSet<String>)> {
    use super::images::OwnImage;
    let (mut pending, mut used) = (Vec::new(), std::collections::BTreeSet::new());
    for (account, region, i) in everywhere::<OwnImage>(store).await? {
        used.extend(i.layers.iter().cloned());
        if i.image["State"] == "pending"
            && let Some(instance) = i.image["SourceInstanceId"].as_str()
            && i.layers.last() == Some(&i.image_id)
        {
            pending.push(Capture {
                account,
                region,
                image_id: i.image_id.clone(),
                instance_id: instance.to_string(),
            });
        }
    }
    Ok((pending, used))
}

/// Records a capture's outcome: the image becomes `available`, or `failed` with why.
pub async fn captured(
    store: &kumori_store::Store,
    c: &Capture,
    outcome: std::result::Result<(), String>,
) -> Result<()> {
    use super::images::OwnImage;
    let limits = crate::Limits::default();
    let ctx = Ctx::root(store, &c.account, &c.region, &limits);
    let mut tx = store.write().await?;
    let Some(mut i) = resource::lock::<OwnImage>(&ctx, &mut tx, &c.image_id).await? else {
        return Ok(());
    };
    if i.image["State"] != "pending" {
        return Ok(());
    }
    match outcome {
        Ok(()) => i.image["State"] = json!("available"),
        Err(why) => {
            i.image["State"] = json!("failed");
            i.image["StateReason"] = json!({
                "Code": "Server.InternalError",
                "Message": format!("Server.InternalError: the root volume could not be captured ({why})"),
            });
        }
    }
    resource::update(&ctx, &mut tx, &i).await?;
    tx.commit().await?;
    Ok(())
}

/// Every EBS volume that exists, in any account and region (the data plane removes the
/// files of the others).
pub async fn volume_ids(store: &kumori_store::Store) -> Result<std::collections::BTreeSet<String>> {
    Ok(everywhere::<super::volumes::Volume>(store)
        .await?
        .into_iter()
        .map(|(_, _, v)| v.volume_id)
        .collect())
}

/// Every resource of kind `R` in every account and region, with its account and region.
async fn everywhere<R: resource::Resource>(
    store: &kumori_store::Store,
) -> Result<Vec<(String, String, R)>> {
    let limits = crate::Limits::default();
    let scopes = {
        let mut tx = store.read().await?;
        tx.scopes_with(R::KIND).await?
    };
    let mut out = Vec::new();
    for (account, region) in scopes {
        let ctx = Ctx::root(store, &account, &region, &limits);
        let mut tx = store.read().await?;
        for r in resource::list::<R>(&ctx, &mut tx).await? {
            out.push((account.clone(), region.clone(), r));
        }
    }
    Ok(out)
}

/// The names of `region`'s availability zones.
pub fn zones(region: &str) -> Vec<String> {
    super::regions::zones(region)
        .into_iter()
        .map(|z| z.name)
        .collect()
}

/// Makes the region's default VPC if it never had one: call before opening the write
/// transaction that then reads it with [`default_vpc_subnets`].
pub async fn ensure_default_vpc(ctx: &Ctx<'_>) -> Result<()> {
    super::default_vpc::ensure(ctx).await
}

/// The region's default VPC and its subnets, read in the caller's transaction.
pub async fn default_vpc_subnets(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
) -> Result<Option<(String, Vec<SubnetPlace>)>> {
    let vpcs: Vec<super::vpc::Vpc> = resource::list(ctx, tx).await?;
    let Some(vpc) = vpcs.into_iter().find(|v| v.is_default) else {
        return Ok(None);
    };
    let subnets: Vec<super::subnet::Subnet> = resource::children(ctx, tx, &vpc.vpc_id).await?;
    let places = subnets
        .into_iter()
        .map(|s| SubnetPlace {
            subnet_id: s.subnet_id,
            vpc_id: s.vpc_id,
            availability_zone: s.availability_zone,
            cidr_block: s.cidr_block,
        })
        .collect();
    Ok(Some((vpc.vpc_id, places)))
}
