//! Customer-managed prefix lists: CreateManagedPrefixList, DescribeManagedPrefixLists,
//! GetManagedPrefixListEntries, ModifyManagedPrefixList, DeleteManagedPrefixList.
//!
//! A prefix list is a named, versioned set of CIDR blocks of one address family that security
//! group rules and routes can name instead of a block. Every change of entries makes a new
//! version; older versions stay readable (`TargetVersion`), as on AWS. A list in use by a rule
//! or a route cannot be deleted: as on AWS, the delete is accepted and the list ends up
//! `delete-failed`, with a message saying what holds it.
//!
//! AWS-managed lists (`com.amazonaws.<region>.s3` and `.dynamodb`, the ones gateway VPC
//! endpoints route to) exist in every region and account without being stored
//! ([`aws_managed`]). Their entries stand in for AWS's own ranges, which kumori does not
//! carry: one /24 per list and region from 100.64.0.0/10, never an address of a VPC's.

use super::common::{
    Filterable, Tag, TagSpecification, dry_run, invalid_value, page_output, paginate, put_tags,
    tags_from_specs,
};
use super::generic::{Ec2Resource, check_id};
use super::routes::RouteTable;
use super::sg::SgRule;
use crate::resource::{self, Resource, arn, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub cidr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManagedPrefixList {
    pub prefix_list_id: String,
    pub address_family: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_message: Option<String>,
    pub prefix_list_arn: String,
    pub prefix_list_name: String,
    pub max_entries: i64,
    pub version: i64,
    pub owner_id: String,
    /// The entries of every version, oldest first; the last is the current one.
    pub versions: Vec<Vec<Entry>>,
}

impl ManagedPrefixList {
    fn entries(&self) -> &[Entry] {
        self.versions.last().map_or(&[], Vec::as_slice)
    }
    /// The entries of the current version.
    pub fn current_entries(&self) -> &[Entry] {
        self.entries()
    }
}

impl Resource for ManagedPrefixList {
    const KIND: &'static str = "prefix-list";
    fn id(&self) -> &str {
        &self.prefix_list_id
    }
}

impl Filterable for ManagedPrefixList {
    const FILTERS: &'static [&'static str] = &["owner-id", "prefix-list-id", "prefix-list-name"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "owner-id" => vec![self.owner_id.clone()],
            "prefix-list-id" => vec![self.prefix_list_id.clone()],
            "prefix-list-name" => vec![self.prefix_list_name.clone()],
            _ => vec![],
        }
    }
}

impl Ec2Resource for ManagedPrefixList {
    const ID_PREFIX: &'static str = "pl";
    const ID_ERROR: &'static str = "InvalidPrefixListID";
    fn shown(&self, tags: &[Tag]) -> Result<Value> {
        let mut v = output(self)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("Versions");
            // AWS-managed lists show no maximum.
            if self.owner_id == "AWS" {
                o.remove("MaxEntries");
            }
        }
        if !tags.is_empty() {
            v["Tags"] = output(&tags)?;
        }
        Ok(v)
    }
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidPrefixListID.NotFound",
            format!("The prefix list ID '{id}' does not exist"),
        )
    }
    fn builtin(region: &str) -> Vec<Self> {
        aws_managed(region)
    }
}

/// The services with gateway endpoints, each with an AWS-managed prefix list.
pub const GATEWAY_SERVICES: [&str; 2] = ["s3", "dynamodb"];

/// The AWS-managed prefix lists of `region`: `com.amazonaws.<region>.s3` and `.dynamodb`.
pub fn aws_managed(region: &str) -> Vec<ManagedPrefixList> {
    let index = super::regions::region_names()
        .position(|r| r == region)
        .unwrap_or(0);
    GATEWAY_SERVICES
        .iter()
        .enumerate()
        .map(|(k, service)| {
            let name = format!("com.amazonaws.{region}.{service}");
            let id = kumori_catalog::stable_id("pl", region, &name);
            // 100.64.0.0/10 holds 16,384 /24s: two per region.
            let n = (index * GATEWAY_SERVICES.len() + k) as u32;
            let block = std::net::Ipv4Addr::from(u32::from_be_bytes([100, 64, 0, 0]) + (n << 8));
            ManagedPrefixList {
                prefix_list_arn: format!(
                    "arn:{}:ec2:{region}:aws:prefix-list/{id}",
                    crate::resource::partition(region)
                ),
                prefix_list_id: id,
                address_family: "IPv4".into(),
                state: "create-complete".into(),
                state_message: None,
                prefix_list_name: name,
                max_entries: 0,
                version: 1,
                owner_id: "AWS".into(),
                versions: vec![vec![Entry {
                    cidr: format!("{block}/24"),
                    description: None,
                }]],
            }
        })
        .collect()
}

/// The list `id` names in this account and region, for rules and routes that name it.
pub async fn find(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<ManagedPrefixList> {
    if let Some(list) = aws_managed(ctx.region)
        .into_iter()
        .find(|p| p.prefix_list_id == id)
    {
        return Ok(list);
    }
    let found: Option<ManagedPrefixList> = match id.starts_with("pl-") {
        true => resource::get(ctx, tx, id).await?,
        false => None,
    };
    found
        .filter(|p| p.state != "delete-complete")
        .ok_or_else(|| ManagedPrefixList::not_found(id))
}

/// How many rules a rule naming list `id` counts as towards a group's quota: its maximum
/// number of entries, as AWS counts customer-managed lists.
pub async fn rule_weight(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<usize> {
    Ok(find(ctx, tx, id).await?.max_entries.max(1) as usize)
}

/// A CIDR block of the list's family, normalised; host bits are refused.
fn check_cidr(family: &str, cidr: &str) -> Result<String> {
    let ok = match family {
        "IPv4" => cidr
            .parse::<ipnet::Ipv4Net>()
            .ok()
            .filter(|n| n.trunc() == *n)
            .map(|n| n.to_string()),
        _ => cidr
            .parse::<ipnet::Ipv6Net>()
            .ok()
            .filter(|n| n.trunc() == *n)
            .map(|n| n.to_string()),
    };
    ok.ok_or_else(|| {
        invalid_value(format!(
            "The CIDR block {cidr} is not a valid {family} CIDR block."
        ))
    })
}

fn check_description(d: &Option<String>) -> Result<()> {
    match d {
        Some(d) if d.chars().count() > 255 => Err(invalid_value(
            "The description of a prefix list entry may be at most 255 characters.",
        )),
        _ => Ok(()),
    }
}

fn check_max_entries(n: i64) -> Result<()> {
    if !(1..=1000).contains(&n) {
        return Err(invalid_value(format!(
            "The maximum number of entries {n} is not valid: it must be between 1 and 1000."
        )));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(invalid_value(
            "A prefix list name must be 1 to 255 characters long.",
        ));
    }
    if name.to_ascii_lowercase().starts_with("com.amazonaws") {
        return Err(invalid_value(
            "Prefix list names starting with com.amazonaws are reserved for AWS.",
        ));
    }
    Ok(())
}

fn too_many(max: i64) -> Error {
    Error::new(
        "PrefixListMaxEntriesExceeded",
        format!("The prefix list has more than its maximum number of entries ({max})."),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryIn {
    cidr: String,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    prefix_list_name: String,
    #[serde(default)]
    entries: Vec<EntryIn>,
    max_entries: i64,
    address_family: String,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_managed_prefix_list(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    check_name(&req.prefix_list_name)?;
    if !matches!(req.address_family.as_str(), "IPv4" | "IPv6") {
        return Err(invalid_value(format!(
            "The address family {} is not valid: use IPv4 or IPv6.",
            req.address_family
        )));
    }
    check_max_entries(req.max_entries)?;
    let mut entries: Vec<Entry> = Vec::new();
    for e in &req.entries {
        check_description(&e.description)?;
        let cidr = check_cidr(&req.address_family, &e.cidr)?;
        if entries.iter().any(|x| x.cidr == cidr) {
            return Err(Error::new(
                "InvalidRequest",
                format!("The request contains the CIDR block {cidr} more than once."),
            ));
        }
        entries.push(Entry {
            cidr,
            description: e.description.clone(),
        });
    }
    if entries.len() as i64 > req.max_entries {
        return Err(too_many(req.max_entries));
    }
    let tags = tags_from_specs(&req.tag_specifications, ManagedPrefixList::KIND)?;
    dry_run(req.dry_run)?;
    let id = new_id("pl");
    let list = ManagedPrefixList {
        prefix_list_arn: arn("ec2", ctx.region, ctx.account, &format!("prefix-list/{id}")),
        prefix_list_id: id,
        address_family: req.address_family,
        state: "create-complete".into(),
        state_message: None,
        prefix_list_name: req.prefix_list_name,
        max_entries: req.max_entries,
        version: 1,
        owner_id: ctx.account.to_string(),
        versions: vec![entries],
    };
    let mut tx = ctx.store.write().await?;
    resource::insert(ctx, &mut tx, &list).await?;
    put_tags(
        ctx,
        &mut tx,
        &list.prefix_list_id,
        ManagedPrefixList::KIND,
        &tags,
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "PrefixList": list.shown(&tags)? }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribePrefixListsRequest {
    #[serde(default)]
    prefix_list_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<super::common::Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// DescribePrefixLists: the AWS services' lists (the older view gateway endpoints and
/// Terraform's `aws_vpc_endpoint` read), with their blocks.
pub async fn describe_prefix_lists(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribePrefixListsRequest = input(raw)?;
    super::common::check_filters::<ManagedPrefixList>(&req.filters)?;
    let all = aws_managed(ctx.region);
    if let Some(missing) = req
        .prefix_list_ids
        .iter()
        .find(|id| !all.iter().any(|p| &p.prefix_list_id == *id))
    {
        return Err(ManagedPrefixList::not_found(missing));
    }
    dry_run(req.dry_run)?;
    let selected: Vec<&ManagedPrefixList> = all
        .iter()
        .filter(|p| {
            req.prefix_list_ids.is_empty() || req.prefix_list_ids.contains(&p.prefix_list_id)
        })
        .filter(|p| super::common::matches(*p, &[], &req.filters))
        .collect();
    let (page, next) = paginate(
        selected,
        |p| p.prefix_list_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let items = page
        .iter()
        .map(|p| {
            json!({
                "PrefixListId": p.prefix_list_id,
                "PrefixListName": p.prefix_list_name,
                "Cidrs": p.current_entries().iter().map(|e| e.cidr.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(page_output("PrefixLists", items, next))
}

pub async fn describe_managed_prefix_lists(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    super::generic::describe_call::<ManagedPrefixList>(ctx, raw, "PrefixListIds", "PrefixLists")
        .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntriesRequest {
    prefix_list_id: String,
    target_version: Option<i64>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

pub async fn get_managed_prefix_list_entries(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: EntriesRequest = input(raw)?;
    check_id::<ManagedPrefixList>(&req.prefix_list_id)?;
    let mut tx = ctx.store.read().await?;
    let list = find(ctx, &mut tx, &req.prefix_list_id).await?;
    drop(tx);
    dry_run(req.dry_run)?;
    let version = req.target_version.unwrap_or(list.version);
    let entries = usize::try_from(version)
        .ok()
        .filter(|v| *v >= 1)
        .and_then(|v| list.versions.get(v - 1))
        .ok_or_else(|| {
            invalid_value(format!(
                "The prefix list {} has no version {version}.",
                list.prefix_list_id
            ))
        })?;
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.cidr.cmp(&b.cidr));
    let (page, next) = paginate(
        sorted,
        |e| e.cidr.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let shown = page.into_iter().map(output).collect::<Result<Vec<_>>>()?;
    Ok(page_output("Entries", shown, next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RemoveEntryIn {
    cidr: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyRequest {
    prefix_list_id: String,
    current_version: Option<i64>,
    prefix_list_name: Option<String>,
    #[serde(default)]
    add_entries: Vec<EntryIn>,
    #[serde(default)]
    remove_entries: Vec<RemoveEntryIn>,
    max_entries: Option<i64>,
    dry_run: Option<bool>,
}

pub async fn modify_managed_prefix_list(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyRequest = input(raw)?;
    check_id::<ManagedPrefixList>(&req.prefix_list_id)?;
    let changes_entries = !req.add_entries.is_empty() || !req.remove_entries.is_empty();
    if req.max_entries.is_some() && changes_entries {
        return Err(Error::new(
            "InvalidParameterCombination",
            "The maximum number of entries cannot be changed in the same request as the entries.",
        ));
    }
    if let Some(name) = &req.prefix_list_name {
        check_name(name)?;
    }
    let mut tx = ctx.store.write().await?;
    let mut list = find(ctx, &mut tx, &req.prefix_list_id).await?;
    if list.state == "delete-failed" {
        return Err(Error::new(
            "IncorrectState",
            format!(
                "The prefix list {} is in the current state ({}).",
                list.prefix_list_id, list.state
            ),
        ));
    }
    if changes_entries && req.current_version.is_some_and(|v| v != list.version) {
        return Err(Error::new(
            "PrefixListVersionMismatch",
            "The prefix list has the incorrect version number.",
        ));
    }
    let mut entries = list.entries().to_vec();
    for r in &req.remove_entries {
        let cidr = check_cidr(&list.address_family, &r.cidr)?;
        let at = entries.iter().position(|e| e.cidr == cidr).ok_or_else(|| {
            Error::new(
                "InvalidPrefixListModification",
                format!("The CIDR {cidr} does not exist."),
            )
        })?;
        entries.remove(at);
    }
    for a in &req.add_entries {
        check_description(&a.description)?;
        let cidr = check_cidr(&list.address_family, &a.cidr)?;
        match entries.iter_mut().find(|e| e.cidr == cidr) {
            // Adding an existing block again updates its description, as on AWS.
            Some(e) => e.description = a.description.clone(),
            None => entries.push(Entry {
                cidr,
                description: a.description.clone(),
            }),
        }
    }
    if let Some(max) = req.max_entries {
        check_max_entries(max)?;
        if (entries.len() as i64) > max {
            return Err(invalid_value(format!(
                "The maximum number of entries {max} is less than the {} entries the prefix list holds.",
                entries.len()
            )));
        }
        list.max_entries = max;
    }
    if entries.len() as i64 > list.max_entries {
        return Err(too_many(list.max_entries));
    }
    dry_run(req.dry_run)?;
    if changes_entries {
        list.version += 1;
        list.versions.push(entries);
    }
    if let Some(name) = req.prefix_list_name {
        list.prefix_list_name = name;
    }
    list.state = "modify-complete".into();
    resource::update(ctx, &mut tx, &list).await?;
    let tags = super::common::tags_of(ctx, &mut tx, &list.prefix_list_id).await?;
    tx.commit().await?;
    Ok(json!({ "PrefixList": list.shown(&tags)? }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    prefix_list_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_managed_prefix_list(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    check_id::<ManagedPrefixList>(&req.prefix_list_id)?;
    let mut tx = ctx.store.write().await?;
    let mut list = find(ctx, &mut tx, &req.prefix_list_id).await?;
    dry_run(req.dry_run)?;
    let id = list.prefix_list_id.clone();
    let rules: Vec<SgRule> = resource::list(ctx, &mut tx).await?;
    let tables: Vec<RouteTable> = resource::list(ctx, &mut tx).await?;
    let holder = rules
        .iter()
        .find(|r| r.prefix_list_id.as_deref() == Some(id.as_str()))
        .map(|r| r.group_id.clone())
        .or_else(|| {
            tables
                .iter()
                .find(|t| {
                    t.routes
                        .iter()
                        .any(|r| r.destination_prefix_list_id.as_deref() == Some(id.as_str()))
                })
                .map(|t| t.route_table_id.clone())
        });
    let tags = super::common::tags_of(ctx, &mut tx, &id).await?;
    let mut answer = list.clone();
    answer.state = "delete-in-progress".into();
    match holder {
        Some(holder) => {
            list.state = "delete-failed".into();
            list.state_message = Some(format!(
                "The prefix list {id} is in use by {holder} and cannot be deleted."
            ));
            resource::update(ctx, &mut tx, &list).await?;
        }
        None => {
            tx.delete(ctx.scope(), &id).await?;
        }
    }
    tx.commit().await?;
    Ok(json!({ "PrefixList": answer.shown(&tags)? }))
}
