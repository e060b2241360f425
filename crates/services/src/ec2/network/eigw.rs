//! Egress-only internet gateways: CreateEgressOnlyInternetGateway,
//! DescribeEgressOnlyInternetGateways, DeleteEgressOnlyInternetGateway.
//!
//! IPv6's NAT-less "out but not in" gateway. It is born attached to its VPC (there is no
//! attach or detach), so it is stored with the VPC as parent: DeleteVpc refuses while one
//! remains. Routes may send IPv6 destinations to it; deleting it leaves them `blackhole`.

use super::common::{TagSpecification, dry_run, put_tags, tags_from_specs};
use super::generic::{Ec2Resource, check_id, describe_call};
use super::igw::Attachment;
use super::vpc::{self, Vpc};
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EgressOnlyInternetGateway {
    pub egress_only_internet_gateway_id: String,
    /// Always one: `attached` to the gateway's VPC.
    pub attachments: Vec<Attachment>,
}

impl EgressOnlyInternetGateway {
    pub fn vpc_id(&self) -> &str {
        self.attachments
            .first()
            .map(|a| a.vpc_id.as_str())
            .unwrap_or_default()
    }
}

impl Resource for EgressOnlyInternetGateway {
    const KIND: &'static str = "egress-only-internet-gateway";
    fn id(&self) -> &str {
        &self.egress_only_internet_gateway_id
    }
    fn parent(&self) -> Option<&str> {
        Some(self.vpc_id())
    }
}

/// EC2 documents only the tag filters for this call.
impl super::common::Filterable for EgressOnlyInternetGateway {
    const FILTERS: &'static [&'static str] = &[];
    fn field(&self, _: &str) -> Vec<String> {
        vec![]
    }
}

impl Ec2Resource for EgressOnlyInternetGateway {
    const ID_PREFIX: &'static str = "eigw";
    const ID_ERROR: &'static str = "InvalidEgressOnlyInternetGatewayId";
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidEgressOnlyInternetGatewayId.NotFound",
            format!("The egressOnlyInternetGateway ID '{id}' does not exist"),
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    vpc_id: String,
    client_token: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_egress_only_internet_gateway(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    check_id::<Vpc>(&req.vpc_id)?;
    let tags = tags_from_specs(&req.tag_specifications, EgressOnlyInternetGateway::KIND)?;
    let mut tx = ctx.store.write().await?;
    let _: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| vpc::not_found(&req.vpc_id))?;
    dry_run(req.dry_run)?;
    let gw = EgressOnlyInternetGateway {
        egress_only_internet_gateway_id: new_id("eigw"),
        attachments: vec![Attachment {
            state: "attached".into(),
            vpc_id: req.vpc_id.clone(),
        }],
    };
    resource::insert(ctx, &mut tx, &gw).await?;
    put_tags(
        ctx,
        &mut tx,
        &gw.egress_only_internet_gateway_id,
        EgressOnlyInternetGateway::KIND,
        &tags,
    )
    .await?;
    tx.commit().await?;
    let mut out = json!({ "EgressOnlyInternetGateway": gw.shown(&tags)? });
    if let Some(t) = req.client_token {
        out["ClientToken"] = json!(t);
    }
    Ok(out)
}

pub async fn describe_egress_only_internet_gateways(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<EgressOnlyInternetGateway>(
        ctx,
        raw,
        "EgressOnlyInternetGatewayIds",
        "EgressOnlyInternetGateways",
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    egress_only_internet_gateway_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_egress_only_internet_gateway(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    let id = &req.egress_only_internet_gateway_id;
    check_id::<EgressOnlyInternetGateway>(id)?;
    let mut tx = ctx.store.write().await?;
    let gw: EgressOnlyInternetGateway = resource::lock(ctx, &mut tx, id)
        .await?
        .ok_or_else(|| EgressOnlyInternetGateway::not_found(id))?;
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), id).await?;
    super::routes::refresh_route_states(ctx, &mut tx, gw.vpc_id()).await?;
    tx.commit().await?;
    Ok(json!({ "ReturnCode": true }))
}
