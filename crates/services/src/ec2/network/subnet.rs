//! Subnets: CreateSubnet, DescribeSubnets, DeleteSubnet.

use super::common::{
    BoolValue, Filterable, Tag, TagSpecification, dry_run, invalid_value, put_tags, tags_from_specs,
};
use super::generic::describe_call;
use super::generic::{Ec2Resource, check_id};
use super::regions::{Zone, zones};
use super::vpc::{self, Vpc};
use crate::resource::{self, Resource, arn, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_net::cidr::{self, CidrError};
use kumori_protocol::AwsError;
use kumori_store::{Key, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Subnet {
    pub subnet_id: String,
    pub subnet_arn: String,
    pub vpc_id: String,
    pub owner_id: String,
    pub cidr_block: String,
    pub availability_zone: String,
    pub availability_zone_id: String,
    pub state: String,
    pub default_for_az: bool,
    pub map_public_ip_on_launch: bool,
    pub map_customer_owned_ip_on_launch: bool,
    pub assign_ipv6_address_on_creation: bool,
    pub enable_dns64: bool,
    pub ipv6_native: bool,
    pub private_dns_name_options_on_launch: PrivateDnsNameOptions,
    /// Addresses held by network interfaces in the subnet; kept in the same transaction that
    /// adds or removes an interface, under the subnet's lock. Not an output member.
    #[serde(default)]
    pub addresses_in_use: u64,
    /// Which addresses those are, as runs (`kumori_net::held`), so that taking one reads this
    /// document and not every interface. Absent from documents stored before it was kept:
    /// rebuilt from the interfaces at the next allocation. Not an output member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_addresses: Option<Vec<[u32; 2]>>,
    /// The block's network address as a number: subnets of a VPC never overlap, so the one
    /// with the greatest first address at most a new block's last is the only one that can
    /// overlap it, found through an index. Absent from documents stored before it was kept:
    /// filled in by the next CreateSubnet in the VPC. Not an output member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_address: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_cidr_block_association_set: Vec<SubnetIpv6Association>,
    /// The subnet's IPv6 /64 and its association, flat so that a lookup by member finds a
    /// conflicting subnet or the association's subnet through an index. Not output members.
    #[serde(
        default,
        rename = "KumoriIpv6Block",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_block: Option<String>,
    #[serde(
        default,
        rename = "KumoriIpv6AssociationId",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_association_id: Option<String>,
    /// The IPv4 ranges of `explicit` CIDR reservations, which automatic address picks skip.
    /// Not an output member.
    #[serde(
        default,
        rename = "KumoriExplicitReservations",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub explicit_reservations: Vec<[u32; 2]>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubnetIpv6Association {
    pub association_id: String,
    pub ipv6_cidr_block: String,
    pub ipv6_cidr_block_state: SubnetCidrBlockState,
    pub ipv6_address_attribute: String,
    pub ip_source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubnetCidrBlockState {
    pub state: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PrivateDnsNameOptions {
    pub hostname_type: String,
    pub enable_resource_name_dns_a_record: bool,
    // The model spells it `AAAA`; documents stored before this fix say `Aaaa`.
    #[serde(
        rename = "EnableResourceNameDnsAAAARecord",
        alias = "EnableResourceNameDnsAaaaRecord"
    )]
    pub enable_resource_name_dns_aaaa_record: bool,
}

impl Resource for Subnet {
    const KIND: &'static str = "subnet";
    fn id(&self) -> &str {
        &self.subnet_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.vpc_id)
    }
}

impl Subnet {
    pub fn net(&self) -> ipnet::Ipv4Net {
        self.cidr_block
            .parse()
            .expect("stored subnet CIDRs are valid")
    }

    /// The subnet's IPv6 block(s), while associated.
    pub fn ipv6_nets(&self) -> Vec<ipnet::Ipv6Net> {
        self.ipv6_cidr_block_association_set
            .iter()
            .filter(|a| a.ipv6_cidr_block_state.state == "associated")
            .filter_map(|a| a.ipv6_cidr_block.parse().ok())
            .collect()
    }

    /// Gives the subnet `net`, associated.
    fn set_ipv6(&mut self, net: ipnet::Ipv6Net) -> SubnetIpv6Association {
        let association = SubnetIpv6Association {
            association_id: new_id("subnet-cidr-assoc"),
            ipv6_cidr_block: net.to_string(),
            ipv6_cidr_block_state: SubnetCidrBlockState {
                state: "associated".into(),
            },
            ipv6_address_attribute: "public".into(),
            ip_source: "amazon".into(),
        };
        self.ipv6_block = Some(net.to_string());
        self.ipv6_association_id = Some(association.association_id.clone());
        self.ipv6_cidr_block_association_set = vec![association.clone()];
        association
    }

    /// Addresses still free: all but AWS's five reserved ones and those interfaces hold.
    pub fn available_ip_address_count(&self) -> u64 {
        cidr::usable_addresses(&self.net()).saturating_sub(self.addresses_in_use)
    }
}

impl Ec2Resource for Subnet {
    const ID_PREFIX: &'static str = "subnet";
    const ID_ERROR: &'static str = "InvalidSubnetID";
    fn shown(&self, tags: &[Tag]) -> Result<Value> {
        let mut v = output(self)?;
        v["AvailableIpAddressCount"] = json!(self.available_ip_address_count());
        if !tags.is_empty() {
            v["Tags"] = output(&tags)?;
        }
        Ok(v)
    }
    fn not_found(id: &str) -> Error {
        not_found(id)
    }
}

impl Filterable for Subnet {
    const FILTERS: &'static [&'static str] = &[
        "availability-zone",
        "availability-zone-id",
        "available-ip-address-count",
        "cidr",
        "cidr-block",
        "cidrBlock",
        "default-for-az",
        "defaultForAz",
        "enable-dns64",
        "ipv6-cidr-block-association.ipv6-cidr-block",
        "ipv6-cidr-block-association.association-id",
        "ipv6-cidr-block-association.state",
        "ipv6-native",
        "map-public-ip-on-launch",
        "owner-id",
        "state",
        "subnet-arn",
        "subnet-id",
        "vpc-id",
    ];

    fn field(&self, name: &str) -> Vec<String> {
        let v = match name {
            "availability-zone" => self.availability_zone.clone(),
            "availability-zone-id" => self.availability_zone_id.clone(),
            "available-ip-address-count" => self.available_ip_address_count().to_string(),
            "cidr" | "cidr-block" | "cidrBlock" => self.cidr_block.clone(),
            "default-for-az" | "defaultForAz" => self.default_for_az.to_string(),
            "enable-dns64" => self.enable_dns64.to_string(),
            "ipv6-native" => self.ipv6_native.to_string(),
            "ipv6-cidr-block-association.ipv6-cidr-block" => {
                return self
                    .ipv6_cidr_block_association_set
                    .iter()
                    .map(|a| a.ipv6_cidr_block.clone())
                    .collect();
            }
            "ipv6-cidr-block-association.association-id" => {
                return self
                    .ipv6_cidr_block_association_set
                    .iter()
                    .map(|a| a.association_id.clone())
                    .collect();
            }
            "ipv6-cidr-block-association.state" => {
                return self
                    .ipv6_cidr_block_association_set
                    .iter()
                    .map(|a| a.ipv6_cidr_block_state.state.clone())
                    .collect();
            }
            "map-public-ip-on-launch" => self.map_public_ip_on_launch.to_string(),
            "owner-id" => self.owner_id.clone(),
            "state" => self.state.clone(),
            "subnet-arn" => self.subnet_arn.clone(),
            "subnet-id" => self.subnet_id.clone(),
            "vpc-id" => self.vpc_id.clone(),
            _ => return vec![],
        };
        vec![v]
    }
}

pub fn not_found(id: &str) -> Error {
    Error::new(
        "InvalidSubnetID.NotFound",
        format!("The subnet ID '{id}' does not exist"),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateSubnetRequest {
    vpc_id: String,
    cidr_block: Option<String>,
    availability_zone: Option<String>,
    availability_zone_id: Option<String>,
    ipv6_cidr_block: Option<String>,
    ipv6_native: Option<bool>,
    ipv4_ipam_pool_id: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_subnet(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateSubnetRequest = input(raw)?;
    if req.ipv6_native == Some(true) || req.ipv4_ipam_pool_id.is_some() {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "CreateSubnet for IPv6 only (Ipv6Native) or from IPAM pools",
        )));
    }
    let text = req.cidr_block.ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter cidrBlock",
        )
    })?;
    let range_error = || {
        Error::new(
            "InvalidSubnet.Range",
            format!("The CIDR '{text}' is invalid."),
        )
    };
    // Host bits are cleared, as EC2 does (10.0.1.7/24 makes 10.0.1.0/24).
    let net = match cidr::parse_v4_canonical(&text) {
        Ok(net) if cidr::vpc_prefix_ok(&net) => net,
        Ok(_) => return Err(range_error()),
        Err(CidrError::HostBitsSet | CidrError::Malformed) => {
            return Err(invalid_value(format!(
                "Value ({text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            )));
        }
    };
    let all_zones = zones(ctx.region);
    let zone_list = || {
        all_zones
            .iter()
            .map(|z| z.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let requested = match (&req.availability_zone, &req.availability_zone_id) {
        (Some(_), Some(_)) => {
            return Err(Error::new(
                "InvalidParameterCombination",
                "Only one of availabilityZone or availabilityZoneId can be specified.",
            ));
        }
        (Some(name), None) => Some(all_zones.iter().find(|z| &z.name == name).cloned().ok_or_else(|| {
            invalid_value(format!(
                "Value ({name}) for parameter availabilityZone is invalid. Subnets can currently only be \
                 created in the following availability zones: {}.",
                zone_list()
            ))
        })?),
        (None, Some(id)) => Some(all_zones.iter().find(|z| &z.id == id).cloned().ok_or_else(|| {
            invalid_value(format!("Value ({id}) for parameter availabilityZoneId is invalid."))
        })?),
        (None, None) => None,
    };
    let tags = tags_from_specs(&req.tag_specifications, Subnet::KIND)?;

    let mut tx = ctx.store.write().await?;
    // Locking the VPC serializes every subnet change in it: the overlap check below and the
    // insert are one step for any concurrent writer.
    let vpc: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| vpc::not_found(&req.vpc_id))?;
    if !vpc.ipv4_blocks().iter().any(|b| b.contains(&net)) {
        return Err(range_error());
    }
    if overlapping(ctx, &mut tx, &vpc.vpc_id, &net)
        .await?
        .is_some()
    {
        return Err(Error::new(
            "InvalidSubnet.Conflict",
            format!("The CIDR '{text}' conflicts with another subnet"),
        ));
    }
    // Without a zone, AWS picks one; kumori takes the zone with the fewest subnets of this VPC
    // (the first of them on a tie), counted in an index.
    let zone = match requested {
        Some(z) => z,
        None => {
            let mut fewest: Option<(usize, &Zone)> = None;
            for z in &all_zones {
                let n = tx
                    .count_where(
                        ctx.scope(),
                        &vpc.vpc_id,
                        Subnet::KIND,
                        "AvailabilityZone",
                        z.name.as_str(),
                    )
                    .await?;
                if fewest.is_none_or(|(m, _)| n < m) {
                    fewest = Some((n, z));
                }
            }
            fewest.map(|(_, z)| z.clone()).ok_or_else(|| {
                invalid_value(format!(
                    "kumori knows no availability zones in region {}.",
                    ctx.region
                ))
            })?
        }
    };
    let ipv6 = match &req.ipv6_cidr_block {
        Some(text) => Some(ipv6_block_for(ctx, &mut tx, &vpc, text).await?),
        None => None,
    };
    dry_run(req.dry_run)?;

    let mut subnet = new_subnet(ctx, &vpc.vpc_id, net, zone, false);
    if let Some(v6) = ipv6 {
        subnet.set_ipv6(v6);
    }
    insert(ctx, &mut tx, &subnet).await?;
    put_tags(ctx, &mut tx, &subnet.subnet_id, Subnet::KIND, &tags).await?;
    tx.commit().await?;
    let mut shown = Subnet {
        state: "pending".into(),
        ..subnet
    };
    for a in &mut shown.ipv6_cidr_block_association_set {
        a.ipv6_cidr_block_state.state = "associating".into();
    }
    Ok(json!({ "Subnet": shown.shown(&tags)? }))
}

/// The IPv6 block `text` as a new subnet of `vpc` (locked by the caller) may take it: a /64
/// (host bits cleared) inside one of the VPC's blocks that no other subnet of it holds.
async fn ipv6_block_for(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    vpc: &Vpc,
    text: &str,
) -> Result<ipnet::Ipv6Net> {
    let net: ipnet::Ipv6Net = text.parse::<ipnet::Ipv6Net>().map(|n| n.trunc()).map_err(|_| {
        invalid_value(format!(
            "Value ({text}) for parameter ipv6CidrBlock is invalid. This is not a valid IPv6 CIDR block."
        ))
    })?;
    let range_error = |why: &str| {
        Error::new(
            "InvalidSubnet.Range",
            format!("The IPv6 CIDR '{text}' is invalid: {why}."),
        )
    };
    if net.prefix_len() != 64 {
        return Err(range_error("kumori's subnets take an IPv6 /64"));
    }
    if !vpc.ipv6_blocks().iter().any(|b| b.contains(&net)) {
        return Err(range_error(&format!(
            "it is not inside an IPv6 block of {}",
            vpc.vpc_id
        )));
    }
    let holder: Option<Subnet> = resource::child_where(
        ctx,
        tx,
        &vpc.vpc_id,
        "KumoriIpv6Block",
        net.to_string().as_str(),
    )
    .await?;
    if holder.is_some() {
        return Err(Error::new(
            "InvalidSubnet.Conflict",
            format!("The CIDR '{text}' conflicts with another subnet"),
        ));
    }
    Ok(net)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssociateSubnetCidrBlockRequest {
    subnet_id: String,
    ipv6_cidr_block: Option<String>,
    ipv6_ipam_pool_id: Option<String>,
}

/// AssociateSubnetCidrBlock: an IPv6 /64 of the VPC's for a subnet that has none.
pub async fn associate_subnet_cidr_block(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AssociateSubnetCidrBlockRequest = input(raw)?;
    if req.ipv6_ipam_pool_id.is_some() {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "AssociateSubnetCidrBlock from IPAM pools",
        )));
    }
    check_id::<Subnet>(&req.subnet_id)?;
    let text = req.ipv6_cidr_block.ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter ipv6CidrBlock",
        )
    })?;
    let mut tx = ctx.store.write().await?;
    let found: Subnet = resource::get(ctx, &mut tx, &req.subnet_id)
        .await?
        .ok_or_else(|| not_found(&req.subnet_id))?;
    // The VPC first, as CreateSubnet locks it: its subnets' blocks change under that lock.
    let vpc: Vpc = resource::lock(ctx, &mut tx, &found.vpc_id)
        .await?
        .ok_or_else(|| vpc::not_found(&found.vpc_id))?;
    let mut subnet: Subnet = resource::lock(ctx, &mut tx, &req.subnet_id)
        .await?
        .ok_or_else(|| not_found(&req.subnet_id))?;
    if !subnet.ipv6_nets().is_empty() {
        return Err(invalid_value(format!(
            "Subnet {} already has an IPv6 CIDR block.",
            subnet.subnet_id
        )));
    }
    let net = ipv6_block_for(ctx, &mut tx, &vpc, &text).await?;
    let mut association = subnet.set_ipv6(net);
    resource::update(ctx, &mut tx, &subnet).await?;
    tx.commit().await?;
    association.ipv6_cidr_block_state.state = "associating".into();
    Ok(json!({ "Ipv6CidrBlockAssociation": association, "SubnetId": subnet.subnet_id }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DisassociateSubnetCidrBlockRequest {
    association_id: String,
}

/// DisassociateSubnetCidrBlock: the subnet's IPv6 block goes, once no interface holds an IPv6
/// address of it, and `AssignIpv6AddressOnCreation` with it.
pub async fn disassociate_subnet_cidr_block(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DisassociateSubnetCidrBlockRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let not_found = || {
        Error::new(
            "InvalidSubnetCidrBlockAssociationID.NotFound",
            format!(
                "The subnet CIDR block with association ID '{}' does not exist",
                req.association_id
            ),
        )
    };
    let found: Vec<Subnet> = resource::find_where(
        ctx,
        &mut tx,
        "KumoriIpv6AssociationId",
        req.association_id.as_str(),
    )
    .await?;
    let found = found.into_iter().next().ok_or_else(not_found)?;
    let mut subnet: Subnet = resource::lock(ctx, &mut tx, &found.subnet_id)
        .await?
        .ok_or_else(not_found)?;
    let enis: Vec<super::eni::NetworkInterface> =
        resource::children(ctx, &mut tx, &subnet.subnet_id).await?;
    if let Some(e) = enis.iter().find(|e| !e.ipv6_addresses.is_empty()) {
        return Err(Error::new(
            "DependencyViolation",
            format!(
                "The subnet's IPv6 block cannot be disassociated: {} holds IPv6 addresses of it.",
                e.network_interface_id
            ),
        ));
    }
    let mut association = subnet
        .ipv6_cidr_block_association_set
        .pop()
        .ok_or_else(not_found)?;
    subnet.ipv6_block = None;
    subnet.ipv6_association_id = None;
    subnet.assign_ipv6_address_on_creation = false;
    resource::update(ctx, &mut tx, &subnet).await?;
    tx.commit().await?;
    association.ipv6_cidr_block_state.state = "disassociating".into();
    Ok(json!({ "Ipv6CidrBlockAssociation": association, "SubnetId": subnet.subnet_id }))
}

/// The subnet of `vpc_id` (locked by the caller) that overlaps `net`, if any: the one with the
/// greatest first address at most `net`'s last, since the VPC's subnets are disjoint.
pub async fn overlapping(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    vpc_id: &str,
    net: &ipnet::Ipv4Net,
) -> Result<Option<Subnet>> {
    // Subnets stored before `first_address` was kept get it now, once per VPC.
    for mut old in
        resource::children_where::<Subnet>(ctx, tx, vpc_id, "FirstAddress", Key::Missing).await?
    {
        old.first_address = Some(u32::from(old.net().network()));
        resource::update(ctx, tx, &old).await?;
    }
    let last = i64::from(u32::from(net.broadcast()));
    Ok(
        resource::child_at_most::<Subnet>(ctx, tx, vpc_id, "FirstAddress", last)
            .await?
            .filter(|s| cidr::overlaps(&s.net(), net)),
    )
}

/// A new subnet of `vpc_id` on `net` in `zone`, not yet stored. Default subnets (one per zone
/// of the default VPC) give instances public addresses.
pub fn new_subnet(
    ctx: &Ctx<'_>,
    vpc_id: &str,
    net: ipnet::Ipv4Net,
    zone: Zone,
    default_for_az: bool,
) -> Subnet {
    let subnet_id = new_id("subnet");
    Subnet {
        subnet_arn: arn(
            "ec2",
            ctx.region,
            ctx.account,
            &format!("subnet/{subnet_id}"),
        ),
        subnet_id,
        vpc_id: vpc_id.to_string(),
        owner_id: ctx.account.to_string(),
        cidr_block: net.to_string(),
        availability_zone: zone.name,
        availability_zone_id: zone.id,
        state: "available".into(),
        default_for_az,
        map_public_ip_on_launch: default_for_az,
        map_customer_owned_ip_on_launch: false,
        assign_ipv6_address_on_creation: false,
        enable_dns64: false,
        ipv6_native: false,
        private_dns_name_options_on_launch: PrivateDnsNameOptions {
            hostname_type: "ip-name".into(),
            enable_resource_name_dns_a_record: false,
            enable_resource_name_dns_aaaa_record: false,
        },
        addresses_in_use: 0,
        held_addresses: Some(vec![]),
        first_address: Some(u32::from(net.network())),
        ipv6_cidr_block_association_set: Vec::new(),
        ipv6_block: None,
        ipv6_association_id: None,
        explicit_reservations: Vec::new(),
    }
}

/// Stores a subnet, in its VPC's default network ACL.
pub async fn insert(ctx: &Ctx<'_>, tx: &mut Tx, subnet: &Subnet) -> Result<()> {
    resource::insert(ctx, tx, subnet).await?;
    super::nacl::join_default(ctx, tx, &subnet.vpc_id, &subnet.subnet_id).await
}

pub async fn describe_subnets(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<Subnet>(ctx, raw, "SubnetIds", "Subnets").await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteSubnetRequest {
    subnet_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_subnet(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteSubnetRequest = input(raw)?;
    check_id::<Subnet>(&req.subnet_id)?;
    let mut tx = ctx.store.write().await?;
    let subnet: Subnet = resource::lock(ctx, &mut tx, &req.subnet_id)
        .await?
        .ok_or_else(|| not_found(&req.subnet_id))?;
    if !tx
        .children(ctx.scope(), &subnet.subnet_id, None)
        .await?
        .is_empty()
    {
        return Err(Error::new(
            "DependencyViolation",
            format!(
                "The subnet '{}' has dependencies and cannot be deleted.",
                subnet.subnet_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    // Its route table and network ACL associations go with it, as in AWS.
    super::routes::forget_subnet(ctx, &mut tx, &subnet.vpc_id, &subnet.subnet_id).await?;
    super::nacl::forget_subnet(ctx, &mut tx, &subnet.vpc_id, &subnet.subnet_id).await?;
    tx.delete(ctx.scope(), &subnet.subnet_id).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifySubnetAttributeRequest {
    subnet_id: String,
    map_public_ip_on_launch: Option<BoolValue>,
    assign_ipv6_address_on_creation: Option<BoolValue>,
    map_customer_owned_ip_on_launch: Option<BoolValue>,
    enable_dns64: Option<BoolValue>,
    private_dns_hostname_type_on_launch: Option<String>,
    enable_resource_name_dns_a_record_on_launch: Option<BoolValue>,
    #[serde(rename = "EnableResourceNameDnsAAAARecordOnLaunch")]
    enable_resource_name_dns_aaaa_record_on_launch: Option<BoolValue>,
}

pub async fn modify_subnet_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifySubnetAttributeRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut subnet: Subnet = resource::lock(ctx, &mut tx, &req.subnet_id)
        .await?
        .ok_or_else(|| not_found(&req.subnet_id))?;
    let flag = |v: &Option<BoolValue>| v.as_ref().and_then(|b| b.value);
    if let Some(v) = flag(&req.map_public_ip_on_launch) {
        subnet.map_public_ip_on_launch = v;
    }
    if let Some(v) = flag(&req.assign_ipv6_address_on_creation) {
        if v && subnet.ipv6_nets().is_empty() {
            return Err(invalid_value(format!(
                "Invalid value 'true' for assignIpv6AddressOnCreation: subnet {} has no IPv6 CIDR block.",
                subnet.subnet_id
            )));
        }
        subnet.assign_ipv6_address_on_creation = v;
    }
    // No subnet is on an Outpost, so this can only be turned off.
    if flag(&req.map_customer_owned_ip_on_launch) == Some(true) {
        return Err(invalid_value(format!(
            "Invalid value 'true' for mapCustomerOwnedIpOnLaunch: subnet {} is not on an Outpost.",
            subnet.subnet_id
        )));
    }
    if let Some(v) = flag(&req.enable_dns64) {
        subnet.enable_dns64 = v;
    }
    if let Some(t) = &req.private_dns_hostname_type_on_launch {
        subnet.private_dns_name_options_on_launch.hostname_type = t.clone();
    }
    if let Some(v) = flag(&req.enable_resource_name_dns_a_record_on_launch) {
        subnet
            .private_dns_name_options_on_launch
            .enable_resource_name_dns_a_record = v;
    }
    if let Some(v) = flag(&req.enable_resource_name_dns_aaaa_record_on_launch) {
        subnet
            .private_dns_name_options_on_launch
            .enable_resource_name_dns_aaaa_record = v;
    }
    resource::update(ctx, &mut tx, &subnet).await?;
    tx.commit().await?;
    Ok(json!({}))
}
