//! VPCs: CreateVpc, DescribeVpcs, DeleteVpc.

use super::common::{BoolValue, Filterable, TagSpecification, dry_run, put_tags, tags_from_specs};
use super::generic::describe_call;
use super::generic::{Ec2Resource, check_id};
use super::nacl::NetworkAcl;
use super::routes::RouteTable;
use super::sg::SecurityGroup;
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input};
use kumori_net::cidr::{self, CidrError};
use kumori_protocol::AwsError;
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Vpc {
    pub vpc_id: String,
    pub owner_id: String,
    pub cidr_block: String,
    pub state: String,
    pub instance_tenancy: String,
    pub is_default: bool,
    pub dhcp_options_id: String,
    pub cidr_block_association_set: Vec<CidrBlockAssociation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_cidr_block_association_set: Vec<Ipv6CidrBlockAssociation>,
    /// VPC attributes (DescribeVpcAttribute). The Vpc output shape has no such members, so
    /// they stay off DescribeVpcs answers.
    #[serde(default)]
    pub attributes: VpcAttributes,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcAttributes {
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
    pub enable_network_address_usage_metrics: bool,
}

/// AWS's defaults for a nondefault VPC: DNS resolution on, DNS hostnames off.
impl Default for VpcAttributes {
    fn default() -> Self {
        VpcAttributes {
            enable_dns_support: true,
            enable_dns_hostnames: false,
            enable_network_address_usage_metrics: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CidrBlockAssociation {
    pub association_id: String,
    pub cidr_block: String,
    pub cidr_block_state: CidrBlockState,
}

/// An Amazon-provided /56 of the VPC.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipv6CidrBlockAssociation {
    pub association_id: String,
    pub ipv6_cidr_block: String,
    pub ipv6_cidr_block_state: CidrBlockState,
    pub network_border_group: String,
    pub ipv6_pool: String,
    pub ipv6_address_attribute: String,
    pub ip_source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CidrBlockState {
    pub state: String,
}

impl Resource for Vpc {
    const KIND: &'static str = "vpc";
    fn id(&self) -> &str {
        &self.vpc_id
    }
}

impl Vpc {
    /// The IPv4 blocks of the VPC that subnets may be carved from.
    pub fn ipv4_blocks(&self) -> Vec<ipnet::Ipv4Net> {
        self.cidr_block_association_set
            .iter()
            .filter(|a| a.cidr_block_state.state == "associated")
            .filter_map(|a| a.cidr_block.parse().ok())
            .collect()
    }

    /// The IPv6 blocks of the VPC that subnets' /64s may be carved from.
    pub fn ipv6_blocks(&self) -> Vec<ipnet::Ipv6Net> {
        self.ipv6_cidr_block_association_set
            .iter()
            .filter(|a| a.ipv6_cidr_block_state.state == "associated")
            .filter_map(|a| a.ipv6_cidr_block.parse().ok())
            .collect()
    }
}

/// Amazon's IPv6 space kumori hands /56s out of: 2600:1f10::/28, part of the 2600:1f00::/24
/// AWS uses for VPCs. Drawn at random and claimed in the store, so no two VPCs of any
/// account share one.
const IPV6_POOL: u128 = 0x2600_1f10_u128 << 96;
const IPV6_POOL_BITS: u32 = 28;
/// AWS's limit of IPv6 blocks per VPC.
const IPV6_BLOCKS_PER_VPC: usize = 5;

/// Claims an Amazon-provided /56 for `vpc` (locked or new, in the caller's transaction),
/// adds it with its `local` route in every table of the VPC, the default ACL's IPv6 entries
/// and the default group's IPv6 egress rule, as EC2 does; answers the association.
pub async fn add_amazon_ipv6_block(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    vpc: &mut Vpc,
) -> Result<Ipv6CidrBlockAssociation> {
    use rand::Rng;
    if vpc.ipv6_cidr_block_association_set.len() >= IPV6_BLOCKS_PER_VPC {
        return Err(Error::new(
            "CidrLimitExceeded",
            format!(
                "This network '{}' has met its maximum number of allowed IPv6 CIDRs: {IPV6_BLOCKS_PER_VPC}",
                vpc.vpc_id
            ),
        ));
    }
    let mut block = None;
    for _ in 0..64 {
        let n: u128 = rand::rng().random_range(0..1u128 << (56 - IPV6_POOL_BITS));
        let net = ipnet::Ipv6Net::new((IPV6_POOL | (n << 72)).into(), 56)
            .map_err(|e| Error(AwsError::internal(e.to_string())))?;
        if super::addresses::claim_in_pool(tx, "ipv6-block", &net.to_string()).await? {
            block = Some(net);
            break;
        }
    }
    let block = block.ok_or_else(|| {
        Error::new(
            "InsufficientCidrBlocks",
            "kumori's IPv6 pool has no free /56 left.",
        )
    })?;
    let association = Ipv6CidrBlockAssociation {
        association_id: new_id("vpc-cidr-assoc"),
        ipv6_cidr_block: block.to_string(),
        ipv6_cidr_block_state: CidrBlockState {
            state: "associated".into(),
        },
        network_border_group: ctx.region.to_string(),
        ipv6_pool: "Amazon".into(),
        ipv6_address_attribute: "public".into(),
        ip_source: "amazon".into(),
    };
    vpc.ipv6_cidr_block_association_set
        .push(association.clone());
    resource::update(ctx, tx, vpc).await?;
    super::routes::add_local_route(ctx, tx, &vpc.vpc_id, &block.to_string()).await?;
    super::nacl::allow_ipv6_in_default(ctx, tx, &vpc.vpc_id).await?;
    super::sg::allow_ipv6_out_of_default(ctx, tx, &vpc.vpc_id).await?;
    Ok(association)
}

impl Ec2Resource for Vpc {
    const ID_PREFIX: &'static str = "vpc";
    const ID_ERROR: &'static str = "InvalidVpcID";
    fn not_found(id: &str) -> Error {
        not_found(id)
    }
}

impl Filterable for Vpc {
    const FILTERS: &'static [&'static str] = &[
        "cidr",
        "cidr-block-association.cidr-block",
        "cidr-block-association.association-id",
        "cidr-block-association.state",
        "dhcp-options-id",
        "ipv6-cidr-block-association.ipv6-cidr-block",
        "ipv6-cidr-block-association.ipv6-pool",
        "ipv6-cidr-block-association.association-id",
        "ipv6-cidr-block-association.state",
        "is-default",
        // An older spelling EC2 still accepts; Terraform's aws_default_vpc uses it.
        "isDefault",
        "owner-id",
        "state",
        "vpc-id",
    ];

    fn field(&self, name: &str) -> Vec<String> {
        let assoc = &self.cidr_block_association_set;
        let v6 = &self.ipv6_cidr_block_association_set;
        match name {
            "cidr" => vec![self.cidr_block.clone()],
            "cidr-block-association.cidr-block" => {
                assoc.iter().map(|a| a.cidr_block.clone()).collect()
            }
            "cidr-block-association.association-id" => {
                assoc.iter().map(|a| a.association_id.clone()).collect()
            }
            "cidr-block-association.state" => assoc
                .iter()
                .map(|a| a.cidr_block_state.state.clone())
                .collect(),
            "dhcp-options-id" => vec![self.dhcp_options_id.clone()],
            "ipv6-cidr-block-association.ipv6-cidr-block" => {
                v6.iter().map(|a| a.ipv6_cidr_block.clone()).collect()
            }
            "ipv6-cidr-block-association.ipv6-pool" => {
                v6.iter().map(|a| a.ipv6_pool.clone()).collect()
            }
            "ipv6-cidr-block-association.association-id" => {
                v6.iter().map(|a| a.association_id.clone()).collect()
            }
            "ipv6-cidr-block-association.state" => v6
                .iter()
                .map(|a| a.ipv6_cidr_block_state.state.clone())
                .collect(),
            "is-default" | "isDefault" => vec![self.is_default.to_string()],
            "owner-id" => vec![self.owner_id.clone()],
            "state" => vec![self.state.clone()],
            "vpc-id" => vec![self.vpc_id.clone()],
            _ => vec![],
        }
    }
}

pub fn not_found(id: &str) -> Error {
    Error::new(
        "InvalidVpcID.NotFound",
        format!("The vpc ID '{id}' does not exist"),
    )
}

fn range_error(text: &str) -> Error {
    Error::new("InvalidVpc.Range", format!("The CIDR '{text}' is invalid."))
}

/// A VPC block as CreateVpc and AssociateVpcCidrBlock take it, in its canonical form (host
/// bits cleared, as EC2 does); malformed text is `InvalidParameterValue`.
fn parse_block(text: &str) -> Result<ipnet::Ipv4Net> {
    cidr::parse_v4_canonical(text).map_err(|e| match e {
        CidrError::HostBitsSet | CidrError::Malformed => Error::new(
            "InvalidParameterValue",
            format!(
                "Value ({text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            ),
        ),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateVpcRequest {
    cidr_block: Option<String>,
    instance_tenancy: Option<String>,
    ipv4_ipam_pool_id: Option<String>,
    amazon_provided_ipv6_cidr_block: Option<bool>,
    ipv6_cidr_block: Option<String>,
    ipv6_pool: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_vpc(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateVpcRequest = input(raw)?;
    // A block of one's own IPv6 pool (BYOIP) comes with that pool's id, as EC2 requires.
    match (&req.ipv6_cidr_block, &req.ipv6_pool) {
        (Some(_), None) => {
            return Err(Error::new(
                "MissingParameter",
                "The request must contain the parameter Ipv6Pool when Ipv6CidrBlock is given.",
            ));
        }
        (_, Some(_)) => {
            return Err(Error(AwsError::not_implemented(
                "ec2",
                "CreateVpc with an IPv6 pool of your own (BYOIP)",
            )));
        }
        (None, None) => {}
    }
    if req.ipv4_ipam_pool_id.is_some() {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "CreateVpc with IPAM pools",
        )));
    }
    let text = req.cidr_block.ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "Either 'cidrBlock' or 'ipv4IpamPoolId' should be provided.",
        )
    })?;
    let net = parse_block(&text)?;
    if !cidr::vpc_prefix_ok(&net) {
        return Err(range_error(&text));
    }
    let tenancy = req.instance_tenancy.unwrap_or_else(|| "default".into());
    if tenancy == "host" {
        return Err(Error::new(
            "InvalidParameterValue",
            "The tenancy value host is not supported for VPC. Valid values: default, dedicated.",
        ));
    }
    let tags = tags_from_specs(&req.tag_specifications, Vpc::KIND)?;
    dry_run(req.dry_run)?;

    let vpc = new_vpc(ctx, net, tenancy, false);
    let mut tx = ctx.store.write().await?;
    check_quota(ctx, &mut tx).await?;
    let (mut vpc, _) = insert_with_defaults(ctx, &mut tx, vpc).await?;
    if req.amazon_provided_ipv6_cidr_block == Some(true) {
        add_amazon_ipv6_block(ctx, &mut tx, &mut vpc).await?;
    }
    put_tags(ctx, &mut tx, &vpc.vpc_id, Vpc::KIND, &tags).await?;
    tx.commit().await?;
    // AWS answers the create while the VPC (and an IPv6 block) is still on its way;
    // describes show them available and associated.
    let mut shown = Vpc {
        state: "pending".into(),
        ..vpc
    };
    for a in &mut shown.ipv6_cidr_block_association_set {
        a.ipv6_cidr_block_state.state = "associating".into();
    }
    Ok(json!({ "Vpc": shown.shown(&tags)? }))
}

/// A new VPC on `net`, not yet stored.
pub fn new_vpc(ctx: &Ctx<'_>, net: ipnet::Ipv4Net, tenancy: String, is_default: bool) -> Vpc {
    Vpc {
        vpc_id: new_id("vpc"),
        owner_id: ctx.account.to_string(),
        cidr_block: net.to_string(),
        state: "available".into(),
        instance_tenancy: tenancy,
        is_default,
        // Set inside the write transaction, to the region's default options set.
        dhcp_options_id: String::new(),
        attributes: VpcAttributes {
            // The default VPC also gives instances DNS hostnames.
            enable_dns_hostnames: is_default,
            ..VpcAttributes::default()
        },
        cidr_block_association_set: vec![CidrBlockAssociation {
            association_id: new_id("vpc-cidr-assoc"),
            cidr_block: net.to_string(),
            cidr_block_state: CidrBlockState {
                state: "associated".into(),
            },
        }],
        ipv6_cidr_block_association_set: Vec::new(),
    }
}

/// `VpcLimitExceeded` once the region holds its quota of VPCs. Counted inside the write
/// transaction, so racing creates cannot overshoot it.
pub async fn check_quota(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<()> {
    if tx.count(ctx.scope(), Vpc::KIND).await? >= ctx.limits.vpcs_per_region {
        return Err(Error::new(
            "VpcLimitExceeded",
            "The maximum number of VPCs has been reached.",
        ));
    }
    Ok(())
}

/// Stores `vpc` with what every VPC is born with: the region's default DHCP options, a main
/// route table holding the `local` route, the default security group and the default network
/// ACL. Returns the VPC as stored and its main route table.
pub async fn insert_with_defaults(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    vpc: Vpc,
) -> Result<(Vpc, RouteTable)> {
    let vpc = Vpc {
        dhcp_options_id: super::dhcp::ensure_default(ctx, tx).await?,
        ..vpc
    };
    resource::insert(ctx, tx, &vpc).await?;
    let main = super::routes::new_table(ctx, &vpc, true);
    resource::insert(ctx, tx, &main).await?;
    let (group, rules) = super::sg::default_group(ctx, &vpc);
    super::sg::insert_group(ctx, tx, &group, &rules).await?;
    resource::insert(ctx, tx, &super::nacl::new_acl(ctx, &vpc, true)).await?;
    Ok((vpc, main))
}

pub async fn describe_vpcs(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<Vpc>(ctx, raw, "VpcIds", "Vpcs").await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteVpcRequest {
    vpc_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_vpc(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteVpcRequest = input(raw)?;
    check_id::<Vpc>(&req.vpc_id)?;
    let mut tx = ctx.store.write().await?;
    let vpc: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| not_found(&req.vpc_id))?;
    // What AWS made with the VPC (main route table, default security group and network ACL)
    // goes with it; anything else the user made in it is a dependency.
    let tables: Vec<RouteTable> = resource::children(ctx, &mut tx, &vpc.vpc_id).await?;
    let groups: Vec<SecurityGroup> = resource::children(ctx, &mut tx, &vpc.vpc_id).await?;
    let acls: Vec<NetworkAcl> = resource::children(ctx, &mut tx, &vpc.vpc_id).await?;
    let own: Vec<&str> = tables
        .iter()
        .filter(|t| t.is_main())
        .map(|t| t.route_table_id.as_str())
        .chain(
            groups
                .iter()
                .filter(|g| g.is_default())
                .map(|g| g.group_id.as_str()),
        )
        .chain(
            acls.iter()
                .filter(|a| a.is_default)
                .map(|a| a.network_acl_id.as_str()),
        )
        .collect();
    let children = tx.children(ctx.scope(), &vpc.vpc_id, None).await?;
    if children.iter().any(|c| !own.contains(&c.id.as_str())) {
        return Err(Error::new(
            "DependencyViolation",
            format!(
                "The vpc '{}' has dependencies and cannot be deleted.",
                vpc.vpc_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    super::peering::close_for_vpc(ctx, &mut tx, &vpc.vpc_id).await?;
    for id in own {
        if id.starts_with("sg-") {
            super::sg::remove_group(ctx, &mut tx, id).await?;
        } else {
            tx.delete(ctx.scope(), id).await?;
        }
    }
    for a in &vpc.ipv6_cidr_block_association_set {
        super::addresses::release_in_pool(&mut tx, &a.ipv6_cidr_block).await?;
    }
    tx.delete(ctx.scope(), &vpc.vpc_id).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeVpcAttributeRequest {
    attribute: String,
    vpc_id: String,
    dry_run: Option<bool>,
}

pub async fn describe_vpc_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeVpcAttributeRequest = input(raw)?;
    check_id::<Vpc>(&req.vpc_id)?;
    let mut tx = ctx.store.read().await?;
    let vpc: Vpc = resource::get(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| not_found(&req.vpc_id))?;
    drop(tx);
    dry_run(req.dry_run)?;
    let a = &vpc.attributes;
    // The model's enum has already refused any other attribute name.
    let (member, value) = match req.attribute.as_str() {
        "enableDnsSupport" => ("EnableDnsSupport", a.enable_dns_support),
        "enableDnsHostnames" => ("EnableDnsHostnames", a.enable_dns_hostnames),
        _ => (
            "EnableNetworkAddressUsageMetrics",
            a.enable_network_address_usage_metrics,
        ),
    };
    let mut out = json!({ "VpcId": vpc.vpc_id });
    out[member] = json!({ "Value": value });
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyVpcAttributeRequest {
    vpc_id: String,
    enable_dns_support: Option<BoolValue>,
    enable_dns_hostnames: Option<BoolValue>,
    enable_network_address_usage_metrics: Option<BoolValue>,
}

pub async fn modify_vpc_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyVpcAttributeRequest = input(raw)?;
    check_id::<Vpc>(&req.vpc_id)?;
    let given: Vec<(&str, Option<bool>)> = [
        ("enableDnsSupport", &req.enable_dns_support),
        ("enableDnsHostnames", &req.enable_dns_hostnames),
        (
            "enableNetworkAddressUsageMetrics",
            &req.enable_network_address_usage_metrics,
        ),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.as_ref().map(|v| (n, v.value)))
    .collect();
    // EC2 changes one attribute per call.
    let (name, value) = match given.as_slice() {
        [] => {
            return Err(Error::new(
                "MissingParameter",
                "The request must contain exactly one attribute to modify.",
            ));
        }
        [(name, value)] => (*name, *value),
        many => {
            let names: Vec<&str> = many.iter().map(|(n, _)| *n).collect();
            return Err(Error::new(
                "InvalidParameterCombination",
                format!(
                    "Fields for multiple attribute types specified: {}",
                    names.join(", ")
                ),
            ));
        }
    };
    let value = value.ok_or_else(|| {
        Error::new(
            "MissingParameter",
            format!("The request must contain the parameter {name}.Value"),
        )
    })?;
    let mut tx = ctx.store.write().await?;
    let mut vpc: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| not_found(&req.vpc_id))?;
    match name {
        "enableDnsSupport" => vpc.attributes.enable_dns_support = value,
        "enableDnsHostnames" => vpc.attributes.enable_dns_hostnames = value,
        _ => vpc.attributes.enable_network_address_usage_metrics = value,
    }
    resource::update(ctx, &mut tx, &vpc).await?;
    tx.commit().await?;
    Ok(json!({}))
}

/// AWS's default quota of IPv4 blocks per VPC, the primary included.
const BLOCKS_PER_VPC: usize = 5;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssociateVpcCidrBlockRequest {
    vpc_id: String,
    cidr_block: Option<String>,
    ipv6_cidr_block: Option<String>,
    amazon_provided_ipv6_cidr_block: Option<bool>,
    ipv4_ipam_pool_id: Option<String>,
    ipv6_ipam_pool_id: Option<String>,
}

/// AssociateVpcCidrBlock: a further IPv4 block, with its `local` route in every table.
pub async fn associate_vpc_cidr_block(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AssociateVpcCidrBlockRequest = input(raw)?;
    if req.ipv6_cidr_block.is_some()
        || req.ipv4_ipam_pool_id.is_some()
        || req.ipv6_ipam_pool_id.is_some()
    {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "AssociateVpcCidrBlock with an IPv6 pool of your own (BYOIP) or IPAM pools",
        )));
    }
    check_id::<Vpc>(&req.vpc_id)?;
    if req.amazon_provided_ipv6_cidr_block == Some(true) {
        if req.cidr_block.is_some() {
            return Err(Error::new(
                "InvalidParameterCombination",
                "Specify either an IPv4 CIDR block or AmazonProvidedIpv6CidrBlock, not both.",
            ));
        }
        let mut tx = ctx.store.write().await?;
        let mut vpc: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
            .await?
            .ok_or_else(|| not_found(&req.vpc_id))?;
        let association = add_amazon_ipv6_block(ctx, &mut tx, &mut vpc).await?;
        tx.commit().await?;
        let mut shown = association;
        shown.ipv6_cidr_block_state.state = "associating".into();
        return Ok(json!({ "Ipv6CidrBlockAssociation": shown, "VpcId": vpc.vpc_id }));
    }
    let text = req.cidr_block.ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter cidrBlock",
        )
    })?;
    let net = parse_block(&text)?;
    let mut tx = ctx.store.write().await?;
    let mut vpc: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| not_found(&req.vpc_id))?;
    let blocks = vpc.ipv4_blocks();
    if blocks.len() >= BLOCKS_PER_VPC {
        return Err(Error::new(
            "CidrLimitExceeded",
            format!(
                "This network '{}' has met its maximum number of allowed CIDRs: {BLOCKS_PER_VPC}",
                vpc.vpc_id
            ),
        ));
    }
    if let Some(why) = cidr::secondary_refusal(&blocks, &net) {
        return Err(Error::new(
            "InvalidVpc.Range",
            format!("The CIDR '{text}' is invalid for {}: {why}.", vpc.vpc_id),
        ));
    }
    // Nor may it swallow a route the VPC's tables already send somewhere else.
    let tables: Vec<RouteTable> = resource::children(ctx, &mut tx, &vpc.vpc_id).await?;
    if let Some(r) = tables.iter().flat_map(|t| t.routes.iter()).find(|r| {
        r.gateway_id.as_deref() != Some("local")
            && r.destination_cidr_block
                .parse::<ipnet::Ipv4Net>()
                .is_ok_and(|d| net.contains(&d))
    }) {
        return Err(Error::new(
            "InvalidVpc.Range",
            format!(
                "The CIDR '{text}' is invalid for {}: it is the same as or larger than the destination {} of a route in the VPC's route tables.",
                vpc.vpc_id, r.destination_cidr_block
            ),
        ));
    }
    let association = CidrBlockAssociation {
        association_id: new_id("vpc-cidr-assoc"),
        cidr_block: net.to_string(),
        cidr_block_state: CidrBlockState {
            state: "associated".into(),
        },
    };
    vpc.cidr_block_association_set.push(association.clone());
    resource::update(ctx, &mut tx, &vpc).await?;
    super::routes::add_local_route(ctx, &mut tx, &vpc.vpc_id, &net.to_string()).await?;
    tx.commit().await?;
    let shown = CidrBlockAssociation {
        cidr_block_state: CidrBlockState {
            state: "associating".into(),
        },
        ..association
    };
    Ok(json!({ "CidrBlockAssociation": shown, "VpcId": vpc.vpc_id }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DisassociateVpcCidrBlockRequest {
    association_id: String,
}

/// DisassociateVpcCidrBlock: never the primary block, nor one that subnets still use.
pub async fn disassociate_vpc_cidr_block(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DisassociateVpcCidrBlockRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let holder = resource::list::<Vpc>(ctx, &mut tx)
        .await?
        .into_iter()
        .find(|v| {
            v.cidr_block_association_set
                .iter()
                .any(|a| a.association_id == req.association_id)
                || v.ipv6_cidr_block_association_set
                    .iter()
                    .any(|a| a.association_id == req.association_id)
        })
        .ok_or_else(|| {
            Error::new(
                "InvalidVpcCidrBlockAssociationID.NotFound",
                format!(
                    "The vpc CIDR block association ID '{}' does not exist",
                    req.association_id
                ),
            )
        })?;
    let mut vpc: Vpc = resource::lock(ctx, &mut tx, &holder.vpc_id)
        .await?
        .unwrap_or(holder);
    if let Some(at) = vpc
        .ipv6_cidr_block_association_set
        .iter()
        .position(|a| a.association_id == req.association_id)
    {
        let block = vpc.ipv6_cidr_block_association_set[at]
            .ipv6_cidr_block
            .clone();
        let subnets: Vec<super::subnet::Subnet> =
            resource::children(ctx, &mut tx, &vpc.vpc_id).await?;
        let net: ipnet::Ipv6Net = block
            .parse()
            .map_err(|_| Error(AwsError::internal("stored VPC block is unreadable")))?;
        if let Some(s) = subnets
            .iter()
            .find(|s| s.ipv6_nets().iter().any(|n| net.contains(n)))
        {
            return Err(Error::new(
                "DependencyViolation",
                format!(
                    "The vpc CIDR block {block} cannot be disassociated: subnet {} has a block in it.",
                    s.subnet_id
                ),
            ));
        }
        let mut removed = vpc.ipv6_cidr_block_association_set.remove(at);
        resource::update(ctx, &mut tx, &vpc).await?;
        super::routes::remove_local_route(ctx, &mut tx, &vpc.vpc_id, &block).await?;
        super::addresses::release_in_pool(&mut tx, &block).await?;
        tx.commit().await?;
        removed.ipv6_cidr_block_state.state = "disassociating".into();
        return Ok(json!({ "Ipv6CidrBlockAssociation": removed, "VpcId": vpc.vpc_id }));
    }
    let at = vpc
        .cidr_block_association_set
        .iter()
        .position(|a| a.association_id == req.association_id)
        .unwrap_or_default();
    let block = vpc.cidr_block_association_set[at].cidr_block.clone();
    if at == 0 || block == vpc.cidr_block {
        return Err(Error::new(
            "OperationNotPermitted",
            format!(
                "The vpc CIDR block with association ID {} may not be disassociated. It is the primary IPv4 CIDR block of the VPC",
                req.association_id
            ),
        ));
    }
    let net: ipnet::Ipv4Net = block
        .parse()
        .map_err(|_| Error(AwsError::internal("stored VPC block is unreadable")))?;
    let subnets: Vec<super::subnet::Subnet> = resource::children(ctx, &mut tx, &vpc.vpc_id).await?;
    if let Some(s) = subnets.iter().find(|s| net.contains(&s.net())) {
        return Err(Error::new(
            "DependencyViolation",
            format!(
                "The vpc CIDR block {block} cannot be disassociated: subnet {} ({}) is in it.",
                s.subnet_id, s.cidr_block
            ),
        ));
    }
    let removed = vpc.cidr_block_association_set.remove(at);
    resource::update(ctx, &mut tx, &vpc).await?;
    super::routes::remove_local_route(ctx, &mut tx, &vpc.vpc_id, &block).await?;
    tx.commit().await?;
    let shown = CidrBlockAssociation {
        cidr_block_state: CidrBlockState {
            state: "disassociating".into(),
        },
        ..removed
    };
    Ok(json!({ "CidrBlockAssociation": shown, "VpcId": vpc.vpc_id }))
}
