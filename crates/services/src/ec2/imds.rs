//! The instance metadata service (IMDS) of every instance, with AWS's semantics: IMDSv1 and
//! IMDSv2 session tokens, the endpoint switch, and the metadata tree an instance sees.
//!
//! How a process reaches it: today a process on the host acts as an instance by using the
//! base URL `http://127.0.0.1:4566/_kumori/imds/<instance-id>/` (set
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT` to it and the SDKs and the CLI use it as they would
//! 169.254.169.254). When instances run for real, the data plane will answer at
//! 169.254.169.254 inside each one with this same code, choosing the instance by the source
//! of the packet; the hop limit can only be honoured there, where hops are seen.
//!
//! Tokens carry their instance and expiry and are signed with a key kept in the store, so any
//! kumori process sharing the store accepts them and none keeps them in memory. Role
//! credentials are minted as STS session credentials (`ASIA…`) recorded in the store with
//! their role: under `--auth verify|enforce` they sign requests like any STS session and may
//! do what the role's policies allow.

use crate::ec2::instances::Instance;
use crate::ec2::keypairs::KeyPair;
use crate::ec2::subnet::Subnet;
use crate::ec2::vpc::Vpc;
use crate::resource;
use crate::{Ctx, Error, Result};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use kumori_protocol::AwsError;
use kumori_store::{Record, Scope, Tx};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;

/// What a metadata request is: method, the path after the instance id (`/latest/…`) and
/// its headers (names lowercase).
pub struct ImdsRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: Vec<(String, String)>,
}

/// The answer: HTTP status, extra headers and a text body.
#[derive(Debug)]
pub struct ImdsResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The IP TTL the answer must leave with: a token's is the instance's hop limit, so a
    /// token cannot reach a process more hops away (a container inside the instance).
    /// Honoured where packets are sent (the data plane), not by the host endpoint.
    pub ip_ttl: Option<u8>,
}

fn text(status: u16, body: impl Into<String>) -> ImdsResponse {
    ImdsResponse {
        ip_ttl: None,
        status,
        headers: vec![],
        body: body.into(),
    }
}

/// IMDS answers errors with a small HTML page, as AWS's does.
fn error_page(status: u16, reason: &str) -> ImdsResponse {
    text(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n <head>\n  <title>{status} - {reason}</title>\n </head>\n <body>\n  <h1>{status} - {reason}</h1>\n </body>\n</html>\n"
        ),
    )
}

fn header<'a>(req: &'a ImdsRequest<'_>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Token lifetimes IMDS accepts, in seconds.
const TTL_RANGE: std::ops::RangeInclusive<u64> = 1..=21600;

/// Role credentials last six hours and are renewed when less than an hour is left, as
/// EC2 does it.
const CREDENTIAL_LIFETIME: u64 = 6 * 3600;
const CREDENTIAL_RENEW_BEFORE: u64 = 3600;

const SECRET_KIND: &str = "kumori-secret";
const TOKEN_KEY_ID: &str = "imds-token-key";
use crate::sts::CREDENTIAL_KIND;

/// Where IMDS keeps its key and the credentials it hands out: the account's global scope.
fn global<'a>(ctx: &'a Ctx<'_>) -> Scope<'a> {
    Scope {
        account: ctx.account,
        region: crate::iam::GLOBAL,
    }
}

/// The key tokens are signed with, made on first use and kept in the store.
async fn token_key(ctx: &Ctx<'_>) -> Result<Vec<u8>> {
    let scope = global(ctx);
    {
        let mut tx = ctx.store.read().await?;
        if let Some(r) = tx.get(scope, TOKEN_KEY_ID).await? {
            return decode_key(&r.body);
        }
    }
    let mut tx = ctx.store.write().await?;
    if let Some(r) = tx.get(scope, TOKEN_KEY_ID).await? {
        return decode_key(&r.body);
    }
    let key: [u8; 32] = rand::rng().random();
    tx.insert(
        scope,
        &Record {
            kind: SECRET_KIND.into(),
            id: TOKEN_KEY_ID.into(),
            parent: None,
            body: json!(STANDARD.encode(key)).to_string(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(key.to_vec())
}

fn decode_key(body: &str) -> Result<Vec<u8>> {
    serde_json::from_str::<String>(body)
        .ok()
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or_else(|| Error(AwsError::internal("the IMDS token key is unreadable")))
}

fn mac(key: &[u8], payload: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(payload.as_bytes());
    m
}

fn make_token(key: &[u8], instance_id: &str, expires: u64) -> String {
    let payload = format!("{instance_id}:{expires}");
    let sig = mac(key, &payload).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

/// Whether `token` is one this deployment made for `instance_id` and has not expired.
fn token_valid(key: &[u8], instance_id: &str, token: &str) -> bool {
    let Some((payload, sig)) = token.split_once('.') else {
        return false;
    };
    let (Ok(payload), Ok(sig)) = (URL_SAFE_NO_PAD.decode(payload), URL_SAFE_NO_PAD.decode(sig))
    else {
        return false;
    };
    let Ok(payload) = String::from_utf8(payload) else {
        return false;
    };
    let Some((id, expires)) = payload.rsplit_once(':') else {
        return false;
    };
    id == instance_id
        && expires
            .parse::<u64>()
            .is_ok_and(|e| e > kumori_protocol::time::now_unix())
        && mac(key, &payload).verify_slice(&sig).is_ok()
}

/// The secret in an instance's metadata endpoint under `--auth verify|enforce`: derived from
/// the store's key and the instance id, so every process sharing the store agrees on it and
/// none has to keep it.
fn endpoint_secret(key: &[u8], instance_id: &str) -> String {
    let tag = mac(key, &format!("endpoint:{instance_id}"))
        .finalize()
        .into_bytes();
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `secret` is instance `instance_id`'s endpoint secret (compared in constant time).
pub async fn endpoint_secret_valid(ctx: &Ctx<'_>, instance_id: &str, secret: &str) -> Result<bool> {
    let Some(given) = (secret.len() == 64)
        .then(|| {
            (0..32)
                .map(|i| u8::from_str_radix(&secret[i * 2..i * 2 + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .flatten()
    else {
        return Ok(false);
    };
    let key = token_key(ctx).await?;
    Ok(mac(&key, &format!("endpoint:{instance_id}"))
        .verify_slice(&given)
        .is_ok())
}

/// The path of instance `instance_id`'s metadata endpoint (with its secret when `secret`),
/// for the account's root or the principal that launched it; `None` for anyone else, or when
/// there is no such instance.
pub async fn endpoint_path(
    ctx: &Ctx<'_>,
    instance_id: &str,
    secret: bool,
) -> Result<Option<String>> {
    let found = {
        let mut tx = ctx.store.read().await?;
        find_instance(ctx, &mut tx, instance_id).await?
    };
    let Some((instance, _)) = found else {
        return Ok(None);
    };
    let allowed = match ctx.caller {
        None => true,
        Some(c) if c.principal == crate::Principal::Root => true,
        Some(c) => instance.launched_by.as_deref() == Some(c.arn.as_str()),
    };
    if !allowed {
        return Ok(None);
    }
    Ok(Some(if secret {
        let key = token_key(ctx).await?;
        format!(
            "/_kumori/imds/{instance_id}/{}/",
            endpoint_secret(&key, instance_id)
        )
    } else {
        format!("/_kumori/imds/{instance_id}/")
    }))
}

/// The instance `id` in whichever region of the account holds it.
async fn find_instance(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Option<(Instance, String)>> {
    for region in crate::ec2::regions::region_names() {
        let rctx = Ctx { region, ..*ctx };
        if let Some(i) = resource::get::<Instance>(&rctx, tx, id).await? {
            return Ok(Some((i, region.to_string())));
        }
    }
    Ok(None)
}

/// Answers one metadata request made as instance `instance_id`.
pub async fn handle(
    ctx: &Ctx<'_>,
    instance_id: &str,
    req: &ImdsRequest<'_>,
) -> Result<ImdsResponse> {
    let found = {
        let mut tx = ctx.store.read().await?;
        find_instance(ctx, &mut tx, instance_id).await?
    };
    let Some((instance, region)) = found else {
        return Ok(error_page(404, "Not Found"));
    };
    if !matches!(instance.state.as_str(), "running" | "pending") {
        // Only a booting or running instance has anything to ask its metadata service with.
        return Ok(error_page(503, "Service Unavailable"));
    }
    if instance.metadata.http_endpoint == "disabled" {
        return Ok(error_page(403, "Forbidden"));
    }
    let key = token_key(ctx).await?;
    if req.path == "/latest/api/token" {
        if req.method != "PUT" {
            return Ok(error_page(405, "Method Not Allowed"));
        }
        // A token request that went through a proxy is refused, so that a misconfigured
        // proxy on the instance cannot hand out tokens.
        if header(req, "x-forwarded-for").is_some() {
            return Ok(error_page(403, "Forbidden"));
        }
        let ttl = header(req, "x-aws-ec2-metadata-token-ttl-seconds")
            .and_then(|t| t.trim().parse::<u64>().ok())
            .filter(|t| TTL_RANGE.contains(t));
        let Some(ttl) = ttl else {
            return Ok(error_page(400, "Bad Request"));
        };
        let token = make_token(&key, instance_id, kumori_protocol::time::now_unix() + ttl);
        let hops = instance.metadata.http_put_response_hop_limit.clamp(1, 64) as u8;
        return Ok(ImdsResponse {
            ip_ttl: Some(hops),
            status: 200,
            headers: vec![(
                "x-aws-ec2-metadata-token-ttl-seconds".into(),
                ttl.to_string(),
            )],
            body: token,
        });
    }
    if req.method != "GET" && req.method != "HEAD" {
        return Ok(error_page(405, "Method Not Allowed"));
    }
    match header(req, "x-aws-ec2-metadata-token") {
        Some(t) if !token_valid(&key, instance_id, t) => {
            return Ok(error_page(401, "Unauthorized"));
        }
        None if instance.metadata.http_tokens == "required" => {
            return Ok(error_page(401, "Unauthorized"));
        }
        _ => {}
    }
    let rctx = Ctx {
        region: &region,
        ..*ctx
    };
    let tree = tree(&rctx, &instance).await?;
    Ok(answer(&tree, req.path))
}

/// The versions IMDS lists at its root, oldest first.
const VERSIONS: &[&str] = &[
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
    "2011-01-01",
    "2011-05-01",
    "2012-01-12",
    "2014-02-25",
    "2014-11-05",
    "2015-10-20",
    "2016-04-19",
    "2016-06-30",
    "2016-09-02",
    "2018-03-28",
    "2018-08-17",
    "2018-09-24",
    "2019-10-01",
    "2020-10-27",
    "2021-01-03",
    "2021-03-23",
    "2021-07-15",
    "2022-09-24",
    "2024-04-11",
    "latest",
];

/// Looks `path` up in the tree: a leaf's value, or a directory's listing (children that are
/// directories end in `/`).
fn answer(tree: &BTreeMap<String, String>, path: &str) -> ImdsResponse {
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return text(200, VERSIONS.join("\n"));
    }
    // Every dated version answers with today's tree, as IMDS does for the categories they
    // share (cloud-init asks for `2021-03-23/meta-data/…`, older tools `2009-04-04/…`).
    let path = match path.split_once('/') {
        Some((v, rest)) if VERSIONS.contains(&v) => format!("latest/{rest}"),
        None if VERSIONS.contains(&path) => "latest".to_string(),
        _ => path.to_string(),
    };
    let key = path.trim_end_matches('/');
    // A leaf answers with or without a trailing slash (botocore asks for
    // `placement/availability-zone/`).
    if let Some(v) = tree.get(key) {
        return text(200, v.clone());
    }
    let prefix = format!("{key}/");
    let mut children: Vec<String> = Vec::new();
    for k in tree.range(prefix.clone()..) {
        let Some(rest) = k.0.strip_prefix(&prefix) else {
            break;
        };
        let child = match rest.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => rest.to_string(),
        };
        if children.last() != Some(&child) {
            children.push(child);
        }
    }
    if children.is_empty() {
        return error_page(404, "Not Found");
    }
    // Public keys are listed as `0=name`, as IMDS does.
    if key == "latest/meta-data/public-keys"
        && let Some(name) = tree.get("latest/meta-data/public-keys/0/_name")
    {
        return text(200, format!("0={name}"));
    }
    children.retain(|c| !c.starts_with('_'));
    text(200, children.join("\n"))
}

/// Every path the instance's metadata service answers, with its value.
async fn tree(ctx: &Ctx<'_>, i: &Instance) -> Result<BTreeMap<String, String>> {
    let described =
        crate::ec2::instances::describe_value(ctx, std::slice::from_ref(&i.instance_id), &[])
            .await?;
    let shown = &described["Reservations"][0]["Instances"][0];
    let mut tx = ctx.store.read().await?;
    let subnet: Option<Subnet> = resource::get(ctx, &mut tx, &i.subnet_id).await?;
    let vpc: Option<Vpc> = resource::get(ctx, &mut tx, &i.vpc_id).await?;
    let key_pair = match &i.key_name {
        Some(name) => resource::list::<KeyPair>(ctx, &mut tx)
            .await?
            .into_iter()
            .find(|k| &k.key_name == name),
        None => None,
    };
    let tags = crate::ec2::common::tags_of(ctx, &mut tx, &i.instance_id).await?;
    drop(tx);

    let mut t = BTreeMap::new();
    let m = |k: &str| format!("latest/meta-data/{k}");
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let private_dns = s(&shown["PrivateDnsName"]);
    let zone_id = crate::ec2::regions::zones(ctx.region)
        .into_iter()
        .find(|z| z.name == i.availability_zone)
        .map(|z| z.id)
        .unwrap_or_default();
    let groups: Vec<String> = shown["SecurityGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| s(&g["GroupName"]))
        .collect();
    let nics: Vec<&Value> = shown["NetworkInterfaces"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let primary = nics
        .iter()
        .find(|n| n["Attachment"]["DeviceIndex"] == 0)
        .copied();
    for (k, v) in [
        ("ami-id", i.image_id.clone()),
        ("ami-launch-index", i.ami_launch_index.to_string()),
        ("ami-manifest-path", "(unknown)".into()),
        ("hostname", private_dns.clone()),
        ("local-hostname", private_dns.clone()),
        ("local-ipv4", i.private_ip_address.clone()),
        ("instance-id", i.instance_id.clone()),
        ("instance-type", i.instance_type.clone()),
        ("instance-action", "none".into()),
        ("instance-life-cycle", "on-demand".into()),
        ("profile", "default-hvm".into()),
        ("reservation-id", i.reservation_id.clone()),
        ("security-groups", groups.join("\n")),
        ("placement/availability-zone", i.availability_zone.clone()),
        ("placement/availability-zone-id", zone_id),
        ("placement/region", ctx.region.to_string()),
        ("services/domain", "amazonaws.com".into()),
        (
            "services/partition",
            crate::resource::partition(ctx.region).into(),
        ),
        ("block-device-mapping/ami", i.root_device_name.clone()),
        ("block-device-mapping/root", i.root_device_name.clone()),
    ] {
        t.insert(m(k), v);
    }
    if let Some(p) = primary {
        t.insert(m("mac"), s(&p["MacAddress"]));
    }
    if let Some(ip) = shown["PublicIpAddress"].as_str() {
        t.insert(m("public-ipv4"), ip.to_string());
        t.insert(m("public-hostname"), s(&shown["PublicDnsName"]));
    }
    let mut ebs = 0;
    for b in shown["BlockDeviceMappings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let device = s(&b["DeviceName"]);
        if device != i.root_device_name {
            ebs += 1;
            let short = device.trim_start_matches("/dev/").to_string();
            t.insert(m(&format!("block-device-mapping/ebs{ebs}")), short);
        }
    }
    if let Some(k) = &key_pair {
        t.insert(m("public-keys/0/openssh-key"), k.public_key.clone());
        t.insert(m("public-keys/0/_name"), k.key_name.clone());
    }
    let subnet_cidr = subnet.map(|s| s.cidr_block).unwrap_or_default();
    let vpc_cidrs: Vec<String> = vpc
        .as_ref()
        .map(|v| {
            v.cidr_block_association_set
                .iter()
                .map(|c| c.cidr_block.clone())
                .collect()
        })
        .unwrap_or_default();
    for n in &nics {
        let mac = s(&n["MacAddress"]);
        let base = format!("network/interfaces/macs/{mac}");
        let ips: Vec<String> = n["PrivateIpAddresses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| s(&p["PrivateIpAddress"]))
            .collect();
        let publics: Vec<String> = n["PrivateIpAddresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["Association"]["PublicIp"].as_str().map(str::to_string))
            .collect();
        let group_list = |field: &str| -> String {
            n["Groups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| s(&g[field]))
                .collect::<Vec<_>>()
                .join("\n")
        };
        for (k, v) in [
            ("device-number", n["Attachment"]["DeviceIndex"].to_string()),
            ("interface-id", s(&n["NetworkInterfaceId"])),
            ("local-hostname", s(&n["PrivateDnsName"])),
            ("local-ipv4s", ips.join("\n")),
            ("mac", mac.clone()),
            ("owner-id", ctx.account.to_string()),
            ("security-group-ids", group_list("GroupId")),
            ("security-groups", group_list("GroupName")),
            ("subnet-id", s(&n["SubnetId"])),
            ("subnet-ipv4-cidr-block", subnet_cidr.clone()),
            ("vpc-id", s(&n["VpcId"])),
            (
                "vpc-ipv4-cidr-block",
                vpc.as_ref()
                    .map(|v| v.cidr_block.clone())
                    .unwrap_or_default(),
            ),
            ("vpc-ipv4-cidr-blocks", vpc_cidrs.join("\n")),
        ] {
            t.insert(m(&format!("{base}/{k}")), v);
        }
        if !publics.is_empty() {
            t.insert(m(&format!("{base}/public-ipv4s")), publics.join("\n"));
            if let Some(h) = n["Association"]["PublicDnsName"].as_str() {
                t.insert(m(&format!("{base}/public-hostname")), h.to_string());
            }
        }
    }
    if i.metadata.instance_metadata_tags == "enabled" {
        for tag in &tags {
            t.insert(m(&format!("tags/instance/{}", tag.key)), tag.value.clone());
        }
    }
    if let Some(profile) = &i.iam_instance_profile {
        let mut tx = ctx.store.read().await?;
        let found = crate::iam::instance_profile(ctx, &mut tx, Some(&profile.arn), None).await?;
        drop(tx);
        let now = kumori_protocol::time::now_iso();
        t.insert(
            m("iam/info"),
            pretty(&json!({
                "Code": "Success",
                "LastUpdated": now,
                "InstanceProfileArn": profile.arn,
                "InstanceProfileId": profile.id,
            })),
        );
        if let Some((_, Some(role))) = found {
            let c = role_credentials(ctx, i, &role).await?;
            t.insert(
                m(&format!("iam/security-credentials/{}", role.role_name)),
                pretty(&json!({
                    "Code": "Success",
                    "LastUpdated": c["Issued"],
                    "Type": "AWS-HMAC",
                    "AccessKeyId": c["AccessKeyId"],
                    "SecretAccessKey": c["SecretAccessKey"],
                    "Token": c["SessionToken"],
                    "Expiration": c["Expiration"],
                })),
            );
        }
    }
    t.insert(
        "latest/dynamic/instance-identity/document".into(),
        pretty(&json!({
            "accountId": ctx.account,
            "architecture": i.architecture,
            "availabilityZone": i.availability_zone,
            "billingProducts": null,
            "devpayProductCodes": null,
            "marketplaceProductCodes": null,
            "imageId": i.image_id,
            "instanceId": i.instance_id,
            "instanceType": i.instance_type,
            "kernelId": null,
            "pendingTime": i.launch_time,
            "privateIp": i.private_ip_address,
            "ramdiskId": null,
            "region": ctx.region,
            "version": "2017-09-30",
        })),
    );
    if let Some(u) = &i.user_data
        && let Ok(bytes) = STANDARD.decode(u)
    {
        t.insert(
            "latest/user-data".into(),
            String::from_utf8_lossy(&bytes).into_owned(),
        );
    }
    Ok(t)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The role credentials instance `i` holds now: the last ones minted for it and `role` while
/// more than an hour of them is left, else new ones, recorded for STS.
async fn role_credentials(ctx: &Ctx<'_>, i: &Instance, role: &crate::iam::Role) -> Result<Value> {
    let scope = global(ctx);
    let now = kumori_protocol::time::now_unix();
    let usable = |c: &Value| {
        c["RoleArn"] == role.arn.as_str()
            && c["ExpiresAt"]
                .as_u64()
                .is_some_and(|e| e > now + CREDENTIAL_RENEW_BEFORE)
    };
    {
        let mut tx = ctx.store.read().await?;
        let held: Vec<Value> = serde_json::from_str(
            &tx.children_json(scope, &i.instance_id, CREDENTIAL_KIND)
                .await?,
        )
        .unwrap_or_default();
        if let Some(c) = held
            .into_iter()
            .filter(usable)
            .max_by_key(|c| c["ExpiresAt"].as_u64())
        {
            return Ok(c);
        }
    }
    let mut tx = ctx.store.write().await?;
    let held: Vec<Value> = serde_json::from_str(
        &tx.children_json(scope, &i.instance_id, CREDENTIAL_KIND)
            .await?,
    )
    .unwrap_or_default();
    if let Some(c) = held
        .iter()
        .filter(|c| usable(c))
        .max_by_key(|c| c["ExpiresAt"].as_u64())
    {
        return Ok(c.clone());
    }
    // Expired credentials of the instance go when new ones are made.
    for c in held
        .iter()
        .filter(|c| c["ExpiresAt"].as_u64().is_none_or(|e| e <= now))
    {
        if let Some(id) = c["AccessKeyId"].as_str() {
            tx.delete(scope, id).await?;
        }
    }
    // Drawn before the next await: the thread's generator cannot cross one.
    let (access_key, secret, token_bytes) = {
        let mut rng = rand::rng();
        let mut pick = |alphabet: &[u8], n: usize| -> String {
            (0..n)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
                .collect()
        };
        let access_key = format!("ASIA{}", pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16));
        let secret = pick(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            40,
        );
        let token: [u8; 48] = rand::rng().random();
        (access_key, secret, token)
    };
    let expires = now + CREDENTIAL_LIFETIME;
    let c = json!({
        "AccessKeyId": access_key,
        "SecretAccessKey": secret,
        "SessionToken": STANDARD.encode(token_bytes),
        "Issued": kumori_protocol::time::now_iso(),
        "Expiration": kumori_protocol::time::iso_at_unix(expires),
        "ExpiresAt": expires,
        "RoleArn": role.arn,
        "RoleSessionName": i.instance_id,
        "AssumedRoleArn": format!(
            "arn:{}:sts::{}:assumed-role/{}/{}",
            crate::resource::partition(ctx.region),
            ctx.account,
            role.role_name,
            i.instance_id
        ),
    });
    tx.insert(
        scope,
        &Record {
            kind: CREDENTIAL_KIND.into(),
            id: access_key,
            parent: Some(i.instance_id.clone()),
            body: c.to_string(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_instance_and_expiry() {
        let key = b"0123456789abcdef0123456789abcdef";
        let t = make_token(key, "i-1", kumori_protocol::time::now_unix() + 60);
        assert!(token_valid(key, "i-1", &t));
        assert!(!token_valid(key, "i-2", &t), "another instance's token");
        assert!(
            !token_valid(b"another key", "i-1", &t),
            "another deployment's token"
        );
        let old = make_token(key, "i-1", kumori_protocol::time::now_unix() - 1);
        assert!(!token_valid(key, "i-1", &old), "expired");
        let (payload, sig) = t.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(format!(
            "i-1:{}",
            kumori_protocol::time::now_unix() + 99_999
        ));
        assert!(!token_valid(key, "i-1", &format!("{forged}.{sig}")));
        assert!(!token_valid(key, "i-1", payload));
    }

    #[test]
    fn directories_list_children() {
        let mut t = BTreeMap::new();
        t.insert("latest/meta-data/ami-id".to_string(), "ami-1".to_string());
        t.insert(
            "latest/meta-data/placement/region".into(),
            "us-east-1".into(),
        );
        t.insert(
            "latest/meta-data/placement/availability-zone".into(),
            "us-east-1a".into(),
        );
        assert_eq!(answer(&t, "/latest/meta-data/").body, "ami-id\nplacement/");
        assert_eq!(answer(&t, "/latest/meta-data").body, "ami-id\nplacement/");
        assert_eq!(
            answer(&t, "/latest/meta-data/placement/").body,
            "availability-zone\nregion"
        );
        assert_eq!(answer(&t, "/latest/meta-data/ami-id").body, "ami-1");
        assert_eq!(answer(&t, "/latest/meta-data/nothing").status, 404);
    }
}
