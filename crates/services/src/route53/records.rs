//! Resource record sets: ChangeResourceRecordSets (a batch applied whole or not at all,
//! each change checked against the zone as the changes before it left it, every failure
//! reported in one InvalidChangeBatch) and ListResourceRecordSets in Route 53's order.

use super::zones::{self, Zone};
use super::{invalid_input, new_change, scope};
use crate::{Ctx, Error, Result, input};
use kumori_store::{Record, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "ChangeResourceRecordSets" => change_resource_record_sets,
    "ListResourceRecordSets" => list_resource_record_sets,
];

pub const KIND: &str = "route53-name";

/// Types Route 53 serves.
const TYPES: &[&str] = &[
    "SOA", "A", "TXT", "NS", "CNAME", "MX", "NAPTR", "PTR", "SRV", "SPF", "AAAA", "CAA", "DS",
    "TLSA", "SSHFP", "SVCB", "HTTPS",
];

/// A DNS name as Route 53 keeps it: lowercase, its final dot, `*` for `\052`; `None` when it
/// is no valid name.
pub fn normalize(name: &str) -> Option<String> {
    let mut n = name.replace("\\052", "*").to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    let labels: Vec<&str> = n.trim_end_matches('.').split('.').collect();
    let ok = n.len() <= 255
        && n != "."
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*'))
        });
    ok.then_some(n)
}

/// A name as Route 53 shows it (`*` as `\052`).
pub fn shown(name: &str) -> String {
    name.replace('*', "\\052")
}

/// The name with its labels reversed (`com.example.www.`): Route 53's order of names.
pub fn reversed(name: &str) -> String {
    let mut labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    labels.reverse();
    format!("{}.", labels.join("."))
}

pub fn node_key(zone: &str, name: &str) -> String {
    format!("route53-name/{zone}/{}", reversed(name))
}

/// Every record set of one name in a zone, in type and set identifier order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    pub zone: String,
    pub name: String,
    pub sets: Vec<Value>,
}

fn order(set: &Value) -> (String, String) {
    (
        set["Type"].as_str().unwrap_or_default().to_string(),
        set["SetIdentifier"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

pub async fn save_node(ctx: &Ctx<'_>, tx: &mut Tx, node: &Node, new: bool) -> Result<()> {
    let rec = Record {
        kind: KIND.into(),
        id: node_key(&node.zone, &node.name),
        parent: Some(zones::key(&node.zone)),
        body: serde_json::to_string(node).unwrap_or_default(),
    };
    if new {
        tx.insert(scope(ctx), &rec).await?;
    } else {
        tx.update(scope(ctx), &rec).await?;
    }
    Ok(())
}

async fn load_node(ctx: &Ctx<'_>, tx: &mut Tx, zone: &str, name: &str) -> Result<Option<Node>> {
    match tx.lock(scope(ctx), &node_key(zone, name)).await? {
        Some(r) => serde_json::from_str(&r.body)
            .map(Some)
            .map_err(|e| Error(kumori_protocol::AwsError::internal(e.to_string()))),
        None => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChangeInput {
    action: String,
    resource_record_set: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Batch {
    comment: Option<String>,
    changes: Vec<ChangeInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChangeRequest {
    hosted_zone_id: String,
    change_batch: Batch,
}

/// Routing fields that make a set one of several of its name and type.
const ROUTING: &[&str] = &[
    "Weight",
    "Region",
    "Failover",
    "GeoLocation",
    "MultiValueAnswer",
    "CidrRoutingConfig",
    "GeoProximityLocation",
];

fn describe(action: &str, name: &str, set: &Value) -> String {
    format!(
        "Change with [Action={action}, Name={}, Type={}, SetIdentifier={}]",
        shown(name),
        set["Type"].as_str().unwrap_or_default(),
        set["SetIdentifier"].as_str().unwrap_or("null")
    )
}

/// A set as given, checked alone and put in the form it is kept and shown in.
fn checked(action: &str, zone: &Zone, raw: &Value) -> std::result::Result<Value, String> {
    let mut set = raw.clone();
    let given = set["Name"].as_str().unwrap_or_default().to_string();
    let name = normalize(&given).ok_or_else(|| format!("Invalid domain name: '{given}'"))?;
    set["Name"] = json!(name);
    let ty = set["Type"].as_str().unwrap_or_default().to_string();
    if !TYPES.contains(&ty.as_str()) {
        return Err(format!("Invalid type: '{ty}'"));
    }
    if name != zone.name && !name.ends_with(&format!(".{}", zone.name)) {
        return Err(format!(
            "RRSet with DNS name {} is not permitted in zone {}",
            shown(&name),
            shown(&zone.name)
        ));
    }
    let alias = set.get("AliasTarget").is_some_and(|a| !a.is_null());
    let records = set.get("ResourceRecords").is_some_and(|r| !r.is_null());
    let ttl = set.get("TTL").is_some_and(|t| !t.is_null());
    if alias == (ttl || records) || (!alias && (ttl != records)) {
        return Err(format!(
            "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found {} in {}",
            if alias || ttl || records {
                "more than one"
            } else {
                "none"
            },
            describe(action, &name, &set)
        ));
    }
    if let Some(t) = set["TTL"].as_i64()
        && !(0..=2_147_483_647).contains(&t)
    {
        return Err(format!("Invalid TTL: {t}"));
    }
    let routed = ROUTING
        .iter()
        .any(|f| set.get(*f).is_some_and(|v| !v.is_null()));
    let identified = set.get("SetIdentifier").is_some_and(|v| !v.is_null());
    if routed && !identified {
        return Err(format!(
            "Invalid request: Missing field 'SetIdentifier' in {}",
            describe(action, &name, &set)
        ));
    }
    if identified && !routed {
        return Err(format!(
            "Invalid request: A SetIdentifier needs a routing policy (Weight, Region, Failover, GeoLocation or MultiValueAnswer) in {}",
            describe(action, &name, &set)
        ));
    }
    if let Some(w) = set["Weight"].as_i64()
        && !(0..=255).contains(&w)
    {
        return Err(format!("Invalid Weight: {w}: it must be between 0 and 255"));
    }
    if let Some(a) = set.get_mut("AliasTarget").filter(|a| !a.is_null()) {
        let dns = a["DNSName"].as_str().unwrap_or_default();
        let n = normalize(dns).ok_or_else(|| format!("Invalid alias target name: '{dns}'"))?;
        a["DNSName"] = json!(shown(&n));
    }
    if let Some(list) = set["ResourceRecords"].as_array() {
        if list.is_empty() {
            return Err(format!(
                "Invalid request: ResourceRecords must not be empty in {}",
                describe(action, &name, &set)
            ));
        }
        if ty == "CNAME" && list.len() > 1 {
            return Err(format!(
                "RRSet of type CNAME with DNS name {} has more than one resource record: a CNAME holds one",
                shown(&name)
            ));
        }
        for r in list {
            let v = r["Value"].as_str().unwrap_or_default();
            check_value(&ty, v)?;
        }
    }
    if ty == "CNAME" && name == zone.name {
        return Err(format!(
            "RRSet of type CNAME with DNS name {} is not permitted at apex in zone {}",
            shown(&name),
            shown(&zone.name)
        ));
    }
    Ok(set)
}

fn check_value(ty: &str, v: &str) -> std::result::Result<(), String> {
    let bad = |code: &str, what: &str| {
        format!("Invalid Resource Record: 'FATAL problem: {code} ({what}) encountered with '{v}''")
    };
    match ty {
        "A" if v.parse::<std::net::Ipv4Addr>().is_err() => Err(bad(
            "ARRDATAIllegalIPv4Address",
            "Value is not a valid IPv4 address",
        )),
        "AAAA" if v.parse::<std::net::Ipv6Addr>().is_err() => Err(bad(
            "AAAARRDATAIllegalIPv6Address",
            "Value is not a valid IPv6 address",
        )),
        "MX" => {
            let mut p = v.split_whitespace();
            match (p.next().map(str::parse::<u16>), p.next(), p.next()) {
                (Some(Ok(_)), Some(_), None) => Ok(()),
                _ => Err(bad(
                    "MXRRDATANotTwoFields",
                    "MX records must have two fields: priority and host",
                )),
            }
        }
        "SRV" => {
            let p: Vec<&str> = v.split_whitespace().collect();
            if p.len() == 4 && p[..3].iter().all(|n| n.parse::<u16>().is_ok()) {
                Ok(())
            } else {
                Err(bad(
                    "SRVRRDATANotFourFields",
                    "SRV records must have four fields: priority, weight, port and target",
                ))
            }
        }
        _ if v.is_empty() => Err(bad("EmptyValue", "Value is empty")),
        _ => Ok(()),
    }
}

fn same_set(a: &Value, b: &Value) -> bool {
    a["Type"] == b["Type"] && a["SetIdentifier"] == b["SetIdentifier"]
}

/// Compares what a DELETE gives with what is kept: TTL, records and alias target as Route 53
/// compares them (numbers as numbers, records as a set).
fn same_values(given: &Value, kept: &Value) -> bool {
    let values = |v: &Value| {
        let mut r: Vec<String> = v["ResourceRecords"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|x| x["Value"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        r.sort();
        r
    };
    let alias = |v: &Value| {
        v.get("AliasTarget").filter(|a| !a.is_null()).map(|a| {
            (
                a["HostedZoneId"].as_str().unwrap_or_default().to_string(),
                a["DNSName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                a["EvaluateTargetHealth"].as_bool().unwrap_or(false),
            )
        })
    };
    given["TTL"].as_i64() == kept["TTL"].as_i64()
        && values(given) == values(kept)
        && alias(given) == alias(kept)
        && ROUTING.iter().all(|f| {
            given.get(*f).filter(|v| !v.is_null()) == kept.get(*f).filter(|v| !v.is_null())
        })
}

pub async fn change_resource_record_sets(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ChangeRequest = input(raw)?;
    if req.change_batch.changes.is_empty() {
        return Err(invalid_input(
            "ChangeBatch must contain at least one change",
        ));
    }
    let mut tx = ctx.store.write().await?;
    let mut zone = zones::must(ctx, &mut tx, &req.hosted_zone_id).await?;
    // The names touched, as the batch leaves them; `true` when the name existed.
    let mut nodes: BTreeMap<String, (Node, bool)> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    let mut count = zone.record_count;
    for change in &req.change_batch.changes {
        let action = change.action.as_str();
        if !matches!(action, "CREATE" | "DELETE" | "UPSERT") {
            errors.push(format!("Invalid action: {action}"));
            continue;
        }
        let set = match checked(action, &zone, &change.resource_record_set) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let name = set["Name"].as_str().unwrap_or_default().to_string();
        let ty = set["Type"].as_str().unwrap_or_default().to_string();
        if !nodes.contains_key(&name) {
            let found = load_node(ctx, &mut tx, &zone.id, &name).await?;
            let existed = found.is_some();
            let node = found.unwrap_or(Node {
                zone: zone.id.clone(),
                name: name.clone(),
                sets: vec![],
            });
            nodes.insert(name.clone(), (node, existed));
        }
        let (node, _) = nodes.get_mut(&name).expect("inserted above");
        let at = node.sets.iter().position(|s| same_set(s, &set));
        let what = format!(
            "[name='{}', type='{ty}'{}]",
            shown(&name),
            set["SetIdentifier"]
                .as_str()
                .map(|s| format!(", set-identifier='{s}'"))
                .unwrap_or_default()
        );
        match action {
            "DELETE" => match at {
                None => errors.push(format!("Tried to delete resource record set {what} but it was not found")),
                Some(i) if !same_values(&set, &node.sets[i]) => errors.push(format!(
                    "Tried to delete resource record set {what} but the values provided do not match the current values"
                )),
                Some(_) if name == zone.name && (ty == "SOA" || ty == "NS") => {
                    errors.push(format!("A HostedZone must contain at least one {ty} record for the zone itself."))
                }
                Some(i) => {
                    node.sets.remove(i);
                    count -= 1;
                }
            },
            _ => {
                if action == "CREATE" && at.is_some() {
                    errors.push(format!("Tried to create resource record set {what} but it already exists"));
                    continue;
                }
                // CNAME stands alone at its name.
                let others = node.sets.iter().filter(|s| s["Type"] != ty.as_str());
                let conflict = if ty == "CNAME" {
                    others.clone().next().is_some()
                } else {
                    others.clone().any(|s| s["Type"] == "CNAME")
                };
                if conflict {
                    errors.push(if ty == "CNAME" {
                        format!(
                            "RRSet of type CNAME with DNS name {} is not permitted as it conflicts with other records with the same DNS name in zone {}",
                            shown(&name),
                            shown(&zone.name)
                        )
                    } else {
                        format!(
                            "RRSet of type {ty} with DNS name {} is not permitted because a conflicting RRSet of type  CNAME with the same DNS name already exists in zone {}",
                            shown(&name),
                            shown(&zone.name)
                        )
                    });
                    continue;
                }
                // Sets of one name and type are all simple (one) or all routed.
                let routed = set.get("SetIdentifier").is_some_and(|v| !v.is_null());
                let mixed = node.sets.iter().any(|s| {
                    s["Type"] == ty.as_str()
                        && !same_set(s, &set)
                        && s.get("SetIdentifier").is_some_and(|v| !v.is_null()) != routed
                });
                if mixed {
                    errors.push(format!(
                        "RRSet with DNS name {}, type {ty}{} cannot be created because a {} set exists with the same name and type",
                        shown(&name),
                        set["SetIdentifier"].as_str().map(|s| format!(", SetIdentifier {s}")).unwrap_or_default(),
                        if routed { "non-routed" } else { "routed" }
                    ));
                    continue;
                }
                match at {
                    Some(i) => node.sets[i] = set,
                    None => {
                        node.sets.push(set);
                        node.sets.sort_by_key(order);
                        count += 1;
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(Error::new(
            "InvalidChangeBatch",
            format!("[{}]", errors.join(", ")),
        ));
    }
    for (_, (node, existed)) in nodes {
        match (node.sets.is_empty(), existed) {
            (true, true) => {
                tx.delete(scope(ctx), &node_key(&node.zone, &node.name))
                    .await?;
            }
            (true, false) => {}
            (false, existed) => save_node(ctx, &mut tx, &node, !existed).await?,
        }
    }
    zone.record_count = count;
    zones::save(ctx, &mut tx, &zone, false).await?;
    let change = new_change(ctx, &mut tx, req.change_batch.comment).await?;
    tx.commit().await?;
    Ok(json!({ "ChangeInfo": change }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRequest {
    hosted_zone_id: String,
    start_record_name: Option<String>,
    start_record_type: Option<String>,
    start_record_identifier: Option<String>,
    max_items: Option<String>,
}

pub async fn list_resource_record_sets(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListRequest = input(raw)?;
    if req.start_record_type.is_some() && req.start_record_name.is_none() {
        return Err(invalid_input(
            "The input is not valid: StartRecordType needs StartRecordName.",
        ));
    }
    let max = match req.max_items.as_deref() {
        None => 300,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid_input(format!("Invalid value for MaxItems: {s}")))?
            .min(300),
    };
    let start = match &req.start_record_name {
        Some(n) => Some(
            normalize(n).ok_or_else(|| invalid_input(format!("Invalid StartRecordName: {n}")))?,
        ),
        None => None,
    };
    let mut tx = ctx.store.read().await?;
    let zone = zones::get(ctx, &mut tx, &req.hosted_zone_id, false)
        .await?
        .ok_or_else(|| zones::not_found(super::bare(&req.hosted_zone_id)))?;
    let records = tx
        .children(scope(ctx), &zones::key(&zone.id), Some(KIND))
        .await?;
    let from = start.as_ref().map(|s| reversed(s));
    let mut shown_sets: Vec<Value> = Vec::new();
    for rec in records {
        let node: Node = serde_json::from_str(&rec.body)
            .map_err(|e| Error(kumori_protocol::AwsError::internal(e.to_string())))?;
        let rev = reversed(&node.name);
        if from.as_ref().is_some_and(|f| rev < *f) {
            continue;
        }
        let at_start = from.as_ref() == Some(&rev);
        for set in node.sets {
            if at_start {
                let (ty, id) = order(&set);
                if let Some(t) = &req.start_record_type
                    && (ty < *t
                        || (ty == *t
                            && req
                                .start_record_identifier
                                .as_ref()
                                .is_some_and(|i| id < *i)))
                {
                    continue;
                }
            }
            shown_sets.push(set);
            if shown_sets.len() > max {
                break;
            }
        }
        if shown_sets.len() > max {
            break;
        }
    }
    let truncated = shown_sets.len() > max;
    let next = truncated.then(|| shown_sets.pop()).flatten();
    let sets: Vec<Value> = shown_sets
        .into_iter()
        .map(|mut s| {
            let n = s["Name"].as_str().unwrap_or_default().to_string();
            s["Name"] = json!(shown(&n));
            s
        })
        .collect();
    let mut out = json!({
        "ResourceRecordSets": sets,
        "IsTruncated": truncated,
        "MaxItems": max.to_string(),
    });
    if let Some(n) = next {
        out["NextRecordName"] = json!(shown(n["Name"].as_str().unwrap_or_default()));
        out["NextRecordType"] = n["Type"].clone();
        if let Some(i) = n["SetIdentifier"].as_str() {
            out["NextRecordIdentifier"] = json!(i);
        }
    }
    Ok(out)
}
