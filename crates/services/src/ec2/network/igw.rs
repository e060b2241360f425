//! Internet gateways: CreateInternetGateway, DescribeInternetGateways,
//! AttachInternetGateway, DetachInternetGateway, DeleteInternetGateway.
//!
//! An attached gateway is stored with its VPC as parent: the VPC cannot be deleted while it is
//! attached (DeleteVpc's dependency check sees it), and "one gateway per VPC" is a question
//! about the VPC's children, asked inside the write transaction.

use super::addresses::Address;
use super::common::{Filterable, TagSpecification, dry_run, put_tags, tags_from_specs};
use super::eni::NetworkInterface;
use super::generic::describe_call;
use super::generic::{Ec2Resource, check_id};
use super::vpc::{self, Vpc};
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InternetGateway {
    pub internet_gateway_id: String,
    pub owner_id: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attachment {
    /// `available` once attached, as DescribeInternetGateways shows it.
    pub state: String,
    pub vpc_id: String,
}

impl InternetGateway {
    pub fn attached_vpc(&self) -> Option<&str> {
        self.attachments.first().map(|a| a.vpc_id.as_str())
    }
}

impl Resource for InternetGateway {
    const KIND: &'static str = "internet-gateway";
    fn id(&self) -> &str {
        &self.internet_gateway_id
    }
    fn parent(&self) -> Option<&str> {
        self.attached_vpc()
    }
}

impl Filterable for InternetGateway {
    const FILTERS: &'static [&'static str] = &[
        "attachment.state",
        "attachment.vpc-id",
        "internet-gateway-id",
        "owner-id",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "attachment.state" => self.attachments.iter().map(|a| a.state.clone()).collect(),
            "attachment.vpc-id" => self.attachments.iter().map(|a| a.vpc_id.clone()).collect(),
            "internet-gateway-id" => vec![self.internet_gateway_id.clone()],
            "owner-id" => vec![self.owner_id.clone()],
            _ => vec![],
        }
    }
}

impl Ec2Resource for InternetGateway {
    const ID_PREFIX: &'static str = "igw";
    const ID_ERROR: &'static str = "InvalidInternetGatewayID";
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidInternetGatewayID.NotFound",
            format!("The internetGateway ID '{id}' does not exist"),
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInternetGatewayRequest {
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_internet_gateway(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateInternetGatewayRequest = input(raw)?;
    let tags = tags_from_specs(&req.tag_specifications, InternetGateway::KIND)?;
    dry_run(req.dry_run)?;
    let igw = InternetGateway {
        internet_gateway_id: new_id("igw"),
        owner_id: ctx.account.to_string(),
        attachments: vec![],
    };
    let mut tx = ctx.store.write().await?;
    resource::insert(ctx, &mut tx, &igw).await?;
    put_tags(
        ctx,
        &mut tx,
        &igw.internet_gateway_id,
        InternetGateway::KIND,
        &tags,
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "InternetGateway": igw.shown(&tags)? }))
}

pub async fn describe_internet_gateways(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<InternetGateway>(ctx, raw, "InternetGatewayIds", "InternetGateways").await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttachmentRequest {
    internet_gateway_id: String,
    vpc_id: String,
    dry_run: Option<bool>,
}

pub async fn attach_internet_gateway(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AttachmentRequest = input(raw)?;
    check_id::<InternetGateway>(&req.internet_gateway_id)?;
    let mut tx = ctx.store.write().await?;
    let mut igw: InternetGateway = resource::lock(ctx, &mut tx, &req.internet_gateway_id)
        .await?
        .ok_or_else(|| InternetGateway::not_found(&req.internet_gateway_id))?;
    let vpc: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| vpc::not_found(&req.vpc_id))?;
    if let Some(current) = igw.attached_vpc() {
        return Err(Error::new(
            "Resource.AlreadyAssociated",
            format!(
                "resource {} is already attached to network {current}",
                igw.internet_gateway_id
            ),
        ));
    }
    let others: Vec<InternetGateway> = resource::children(ctx, &mut tx, &vpc.vpc_id).await?;
    if let Some(other) = others.first() {
        return Err(Error::new(
            "Resource.AlreadyAssociated",
            format!(
                "resource {} is already attached to network {}",
                vpc.vpc_id, other.internet_gateway_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    igw.attachments = vec![Attachment {
        state: "available".into(),
        vpc_id: vpc.vpc_id.clone(),
    }];
    resource::update(ctx, &mut tx, &igw).await?;
    super::routes::refresh_route_states(ctx, &mut tx, &vpc.vpc_id).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn detach_internet_gateway(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AttachmentRequest = input(raw)?;
    check_id::<InternetGateway>(&req.internet_gateway_id)?;
    let mut tx = ctx.store.write().await?;
    let mut igw: InternetGateway = resource::lock(ctx, &mut tx, &req.internet_gateway_id)
        .await?
        .ok_or_else(|| InternetGateway::not_found(&req.internet_gateway_id))?;
    let _: Vpc = resource::get(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| vpc::not_found(&req.vpc_id))?;
    if igw.attached_vpc() != Some(req.vpc_id.as_str()) {
        return Err(Error::new(
            "Gateway.NotAttached",
            format!(
                "resource {} is not attached to network {}",
                igw.internet_gateway_id, req.vpc_id
            ),
        ));
    }
    // Public addresses mapped to interfaces in the VPC would lose their way out.
    let enis: Vec<NetworkInterface> = resource::list(ctx, &mut tx).await?;
    let mapped = resource::list::<Address>(ctx, &mut tx)
        .await?
        .into_iter()
        .filter_map(|a| a.association)
        .any(|a| {
            enis.iter()
                .any(|e| e.network_interface_id == a.network_interface_id && e.vpc_id == req.vpc_id)
        });
    if mapped {
        return Err(Error::new(
            "DependencyViolation",
            format!(
                "Network {} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway.",
                req.vpc_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    igw.attachments.clear();
    resource::update(ctx, &mut tx, &igw).await?;
    // Routes through it now lead nowhere.
    super::routes::refresh_route_states(ctx, &mut tx, &req.vpc_id).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteInternetGatewayRequest {
    internet_gateway_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_internet_gateway(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteInternetGatewayRequest = input(raw)?;
    let id = req.internet_gateway_id.as_str();
    check_id::<InternetGateway>(id)?;
    let mut tx = ctx.store.write().await?;
    let igw: InternetGateway = resource::lock(ctx, &mut tx, id)
        .await?
        .ok_or_else(|| InternetGateway::not_found(id))?;
    if igw.attached_vpc().is_some() {
        return Err(Error::new(
            "DependencyViolation",
            format!("The internetGateway '{id}' has dependencies and cannot be deleted."),
        ));
    }
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), id).await?;
    tx.commit().await?;
    Ok(json!({}))
}
