//! A model-driven fuzz over every operation of ec2, iam and sts: inputs generated from each
//! operation's input shape (members present or missing, values of the right kind and some of
//! the wrong one), sent through the whole router as unsigned form POSTs. kumori must answer
//! every one with a success or a 4xx; a 5xx (other than 501 NotImplemented, which marks an
//! operation kumori does not implement and skips it) is a bug, and so is a panic or a hang.
//!
//! Deterministic: a fixed seed and a few rounds over all operations in CI (seconds in debug).
//! Each round visits the operations in a new order, so that creates, deletes and describes of
//! different kinds meet each other's leftovers. By hand:
//!
//! ```text
//! KUMORI_FUZZ_CASES=200 KUMORI_FUZZ_SEED=7 cargo test -p kumori-server --test model_fuzz -- --nocapture
//! KUMORI_FUZZ_VERBOSE=1 ...   # every answer's code, and a tally: is the fuzz getting past validation?
//! ```
//!
//! The state is seeded with a VPC, subnet, security group, instance and IAM entities, and
//! every id, ARN and pagination token a response mentions joins the pool values are drawn
//! from, so that id-shaped inputs often name something real and handlers go past NotFound.

use axum::body::Body;
use axum::http::Request;
use hmac::Mac;
use kumori_protocol::HttpRequest;
use kumori_protocol::model::{Kind, Member, Model, ShapeId, service};
use kumori_protocol::sigv4::{self, Signature};
use kumori_server::{Config, Mode, router};
use kumori_store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// splitmix64: small, fast, and the same sequence on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Ids seen in responses, by prefix (`vpc`, `subnet`, `i`, ...), ARNs and tokens.
#[derive(Default)]
struct Pool {
    ids: BTreeMap<String, BTreeSet<String>>,
    arns: BTreeSet<String>,
    /// Pagination tokens kumori handed out.
    tokens: BTreeSet<String>,
}

/// Prefixes of EC2 ids worth remembering.
const ID_PREFIXES: &[&str] = &[
    "eipalloc",
    "eipassoc",
    "subnet",
    "vpc",
    "sg",
    "sgr",
    "i",
    "ami",
    "rtb",
    "rtbassoc",
    "acl",
    "aclassoc",
    "igw",
    "eigw",
    "eni",
    "eni-attach",
    "vol",
    "snap",
    "dopt",
    "nat",
    "pcx",
    "pl",
    "lt",
    "key",
    "pg",
    "nis",
    "nisa",
    "nip",
    "nia",
    "vpc-cidr-assoc",
    "subnet-cidr-assoc",
    "iip-assoc",
];

impl Pool {
    /// Remembers the ids, ARNs and tokens in a response.
    fn learn(&mut self, text: &str) {
        for open in ["<nextToken>", "<NextToken>", "<Marker>"] {
            if let Some((_, rest)) = text.split_once(open)
                && let Some((token, _)) = rest.split_once('<')
                && self.tokens.len() < 200
            {
                self.tokens.insert(token.replace("&amp;", "&"));
            }
        }
        for (at, _) in text.match_indices('>') {
            let rest = &text[at + 1..];
            let token = &rest[..rest.find('<').unwrap_or(rest.len())];
            if token.starts_with("arn:aws:") && token.len() < 300 {
                if self.arns.len() < 500 {
                    self.arns.insert(token.to_string());
                }
                continue;
            }
            if let Some((prefix, tail)) = token.rsplit_once('-')
                && ID_PREFIXES.contains(&prefix)
                && (8..=17).contains(&tail.len())
                && tail.bytes().all(|b| b.is_ascii_hexdigit())
            {
                let set = self.ids.entry(prefix.to_string()).or_default();
                if set.len() < 200 {
                    set.insert(token.to_string());
                }
            }
        }
    }

    fn id(&self, rng: &mut Rng, prefix: &str) -> Option<String> {
        let set = self.ids.get(prefix)?;
        set.iter().nth(rng.below(set.len())).cloned()
    }

    fn any_id(&self, rng: &mut Rng) -> Option<String> {
        let all: Vec<&String> = self.ids.values().flatten().collect();
        (!all.is_empty()).then(|| all[rng.below(all.len())].clone())
    }
}

/// Which id prefix a member name suggests (`VpcId`, `SubnetIds`, `GroupId`, ...).
fn id_prefix(member: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("VpcPeeringConnection", "pcx"),
        ("EgressOnlyInternetGateway", "eigw"),
        ("InternetGateway", "igw"),
        ("Subnet", "subnet"),
        ("SecurityGroupRule", "sgr"),
        ("SecurityGroup", "sg"),
        ("GroupId", "sg"),
        ("Instance", "i"),
        ("Image", "ami"),
        ("RouteTable", "rtb"),
        ("NetworkAcl", "acl"),
        ("NetworkInterface", "eni"),
        ("Volume", "vol"),
        ("Snapshot", "snap"),
        ("DhcpOptions", "dopt"),
        ("NatGateway", "nat"),
        ("PrefixList", "pl"),
        ("LaunchTemplate", "lt"),
        ("KeyPair", "key"),
        ("Allocation", "eipalloc"),
        ("NetworkInsightsPath", "nip"),
        ("NetworkInsightsAnalysis", "nia"),
        ("NetworkInsightsAccessScopeAnalysis", "nisa"),
        ("NetworkInsightsAccessScope", "nis"),
        ("Vpc", "vpc"),
    ];
    TABLE
        .iter()
        .find(|(k, _)| member.contains(k))
        .map(|(_, p)| *p)
}

/// Filter names EC2 documents, and values with its wildcards.
const FILTER_WORDS: &[&str] = &[
    "vpc-id",
    "subnet-id",
    "group-id",
    "group-name",
    "instance-id",
    "instance-state-name",
    "private-ip-address",
    "ip-address",
    "tag:Name",
    "tag:",
    "tag-key",
    "tag-value",
    "state",
    "cidr",
    "cidr-block",
    "availability-zone",
    "owner-id",
    "is-default",
    "association.main",
    "route.destination-cidr-block",
    "ip-permission.from-port",
    "ip-permission.cidr",
    "network-interface-id",
    "attachment.instance-id",
    "image-id",
    "instance-type",
    "key-name",
    "volume-id",
    "status",
    "name",
    "architecture",
    "egress.ip-permission.to-port",
    "default-for-az",
    "entry.rule-number",
    "prefix-list-id",
    "launch-template-name",
    "description",
    "allocation-id",
    "public-ip",
    "domain",
    "*",
    "?",
    "*?*",
    "a*b",
    "\\*",
    "é*",
    "*🦀?",
    "10.0.*",
    "available",
    "running",
    "true",
    "",
];

const POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}"#;
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Policy documents, good and bad, for every `*Document` member.
const POLICIES: &[&str] = &[
    POLICY,
    TRUST,
    "{",
    "{}",
    r#"{"Statement":"x"}"#,
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotAction":"iam:*","NotResource":"arn:aws:ec2:*:*:vpc/*","Condition":{"StringLike":{"aws:username":"${aws:username}*"},"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::1/300"]},"DateGreaterThan":{"aws:CurrentTime":"9999-99-99"},"Bogus":{"a":"b"}}}]}"#,
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*","arn:aws:iam::000000000000:root","123"]},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":"x"}}}]}"#,
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Sid":"\u0000\ud800"}]}"#,
];

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Generates inputs for one service's operations, as that service's form pairs.
struct Gen<'a> {
    model: &'a Model,
    ec2: bool,
    rng: Rng,
}

impl Gen<'_> {
    /// The key a member travels under (botocore's serializers; `Walker::wire_name` in
    /// crates/protocol/src/query.rs reads it back).
    fn wire_name(&self, m: &Member) -> String {
        if self.ec2 {
            if let Some(q) = &m.query_name {
                return q.clone();
            }
            if let Some(l) = &m.location_name {
                return upper_first(l);
            }
            m.name.clone()
        } else {
            m.location_name.clone().unwrap_or_else(|| m.name.clone())
        }
    }

    fn structure(
        &mut self,
        pool: &Pool,
        shape: ShapeId,
        prefix: &str,
        depth: usize,
        out: &mut Vec<(String, String)>,
    ) {
        let Kind::Structure { members } = &self.model.shape(shape).kind else {
            return;
        };
        // A filter's name and values are drawn from filter words.
        let in_filter = self.model.shape(shape).name == "Filter";
        for m in members {
            // Required members mostly present, optional ones often: both ways get tried.
            let p = if m.required { 92 } else { 35 };
            if !self.rng.chance(p) {
                continue;
            }
            // DryRun answers before the work is done; keep it rare so the work gets done.
            if m.name == "DryRun" && !self.rng.chance(10) {
                continue;
            }
            let key = format!("{prefix}{}", self.wire_name(m));
            let name = if in_filter { "Filters" } else { &m.name };
            self.member(pool, m, name, &key, depth, out);
        }
    }

    fn member(
        &mut self,
        pool: &Pool,
        m: &Member,
        name: &str,
        key: &str,
        depth: usize,
        out: &mut Vec<(String, String)>,
    ) {
        let shape = self.model.shape(m.shape);
        match &shape.kind {
            Kind::Structure { .. } => {
                if depth < 4 {
                    self.structure(pool, m.shape, &format!("{key}."), depth + 1, out);
                }
            }
            Kind::List { member: item } => {
                if depth >= 4 {
                    return;
                }
                let items = match shape.min {
                    // Now and then a long top-level list (ids, filters, tags): past AWS's caps,
                    // and past what one SQL statement may bind.
                    _ if depth == 0 && self.rng.chance(3) => 200 + self.rng.below(1_200),
                    Some(min) if min >= 1.0 && self.rng.chance(80) => 1 + self.rng.below(3),
                    _ => self.rng.below(4),
                };
                let base = if self.ec2 || shape.flattened || m.flattened {
                    key.to_string()
                } else {
                    let inner = item.location_name.as_deref().unwrap_or("member");
                    format!("{key}.{inner}")
                };
                // Sometimes the same item repeated (a tag or an id twice), which must not
                // reach the store as a duplicate key.
                let repeat = items > 1 && self.rng.chance(20);
                let first = out.len();
                let one = format!("{base}.1");
                for i in 1..=items {
                    if repeat && i > 1 {
                        let copies: Vec<_> = out[first..]
                            .iter()
                            .filter(|(k, _)| *k == one || k.starts_with(&format!("{one}.")))
                            .map(|(k, v)| (format!("{base}.{i}{}", &k[one.len()..]), v.clone()))
                            .collect();
                        out.extend(copies);
                        continue;
                    }
                    // Items take the list's name for the value heuristics (`SubnetIds`).
                    self.member(pool, item, name, &format!("{base}.{i}"), depth + 1, out);
                }
            }
            Kind::Map { key: k, value: v } => {
                if depth >= 4 {
                    return;
                }
                let kname = k.location_name.as_deref().unwrap_or("key");
                let vname = v.location_name.as_deref().unwrap_or("value");
                let base = if shape.flattened {
                    key.to_string()
                } else {
                    format!("{key}.entry")
                };
                for i in 1..=self.rng.below(3) {
                    let (kk, vk) = (format!("{base}.{i}.{kname}"), format!("{base}.{i}.{vname}"));
                    self.member(pool, k, "Key", &kk, depth + 1, out);
                    self.member(pool, v, name, &vk, depth + 1, out);
                }
            }
            _ => {
                let v = self.scalar(pool, m.shape, name);
                out.push((key.to_string(), v));
            }
        }
    }

    fn scalar(&mut self, pool: &Pool, shape: ShapeId, name: &str) -> String {
        let s = self.model.shape(shape);
        // Now and then a value of the wrong kind, which the protocol layer must refuse.
        if self.rng.chance(4) {
            return self
                .rng
                .pick(&["", "x", "-1", "1e999", "true", "🦀", "%00"])
                .to_string();
        }
        match s.kind {
            Kind::Boolean => self.rng.pick(&["true", "false"]).to_string(),
            Kind::Integer | Kind::Long => {
                // Launch counts stay small: a huge MaxCount fills a subnet with thousands
                // of instances, which is slow rather than wrong.
                if name == "MaxCount" || name == "MinCount" {
                    return self.rng.below(3).to_string();
                }
                let lo = s.min.unwrap_or(-1.0) as i64;
                let hi = s.max.map(|m| m as i64).unwrap_or(1_000);
                match self.rng.below(8) {
                    0 => "0".into(),
                    1 => "-1".into(),
                    // Where `as` casts wrap and debug arithmetic overflows.
                    2 => self
                        .rng
                        .pick(&[i32::MAX as i64, i32::MIN as i64, 65_536, 4_294_967_296])
                        .to_string(),
                    3 => self.rng.pick(&[i64::MAX, i64::MIN]).to_string(),
                    _ => {
                        let span = (hi - lo).clamp(0, 100_000) as usize + 1;
                        (lo + self.rng.below(span) as i64).to_string()
                    }
                }
            }
            Kind::Float | Kind::Double => self.rng.pick(&["0", "0.5", "-1", "1e300"]).to_string(),
            Kind::Timestamp => self
                .rng
                .pick(&[
                    "2026-01-02T03:04:05Z",
                    "1970-01-01T00:00:00Z",
                    "9999-12-31T23:59:59Z",
                    "0",
                    "1767225600",
                ])
                .to_string(),
            Kind::Blob => self
                .rng
                .pick(&["", "aGVsbG8=", "not base64!", "AAAA"])
                .to_string(),
            _ => self.string(pool, s.enum_values.as_deref(), name),
        }
    }

    fn string(&mut self, pool: &Pool, enum_values: Option<&[String]>, name: &str) -> String {
        if let Some(values) = enum_values
            && !values.is_empty()
            && self.rng.chance(85)
        {
            return self.rng.pick(values).clone();
        }
        // Values of the shape the member's name suggests, most of the time.
        if self.rng.chance(60)
            && let Some(v) = self.named(pool, name)
        {
            return v;
        }
        match self.rng.below(10) {
            0 => String::new(),
            1 => "vpc-123".into(),
            2 => "x".repeat(300 + self.rng.below(5_000)),
            3 => "a b/c*?é".into(),
            4 => self
                .rng
                .pick(&["🦀", "\u{0}", "\r\n", "$Latest", "/", "*", "é"])
                .to_string(),
            _ => format!("fuzz{}", self.rng.below(1_000)),
        }
    }

    /// A value for a member called `name`: ids, CIDRs, addresses, policies, ARNs, names.
    fn named(&mut self, pool: &Pool, name: &str) -> Option<String> {
        if name == "Filters" && self.rng.chance(50) {
            // The strings of a filter (its name and values) take the list's name.
            return Some(self.rng.pick(FILTER_WORDS).to_string());
        }
        if name == "NextToken" || name == "Marker" {
            let t = pool.tokens.iter().nth(self.rng.below(pool.tokens.len()));
            return t.filter(|_| self.rng.chance(70)).cloned();
        }
        if name.ends_with("Id") || name.ends_with("Ids") || name == "Resources" {
            let real = match id_prefix(name) {
                Some(p) => pool.id(&mut self.rng, p),
                None => pool.any_id(&mut self.rng),
            };
            if let Some(id) = real.filter(|_| self.rng.chance(75)) {
                return Some(id);
            }
            let p = id_prefix(name).unwrap_or("x");
            let fake = [
                format!("{p}-123"),
                format!("{p}-0123456789abcdef0"),
                format!("{p}-"),
                "vpc-123".to_string(),
            ];
            return Some(self.rng.pick(&fake).clone());
        }
        if name.starts_with("Tag") || name == "Key" {
            let long = "k".repeat(200);
            let keys = ["Name", "env", "aws:reserved", "", "k", "é🦀", &long];
            return Some(self.rng.pick(&keys).to_string());
        }
        if name.contains("Cidr") {
            let cidrs = [
                "10.0.0.0/16",
                "10.0.1.0/24",
                "10.1.0.0/16",
                "0.0.0.0/0",
                "::/0",
                "2600:1f18::/56",
                "10.0.0.0/33",
                "10.0.0.1/24",
                "300.0.0.0/8",
                "10.0.0.0/28",
            ];
            return Some(self.rng.pick(&cidrs).to_string());
        }
        if name.contains("IpAddress") || name.ends_with("Ip") {
            let ips = [
                "10.0.0.5",
                "10.0.1.10",
                "172.31.0.9",
                "::1",
                "999.1.1.1",
                "x",
            ];
            return Some(self.rng.pick(&ips).to_string());
        }
        if name.contains("PolicyDocument") || name == "Policy" || name.ends_with("Document") {
            return Some(match self.rng.below(8) {
                // Nested past any policy reader's limit.
                0 => format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)),
                1 => format!(
                    r#"{{"Version":"2012-10-17","Statement":{}}}"#,
                    "[".repeat(300)
                ),
                _ => self.rng.pick(POLICIES).to_string(),
            });
        }
        if name.ends_with("Arn") || name.ends_with("Arns") {
            let real = pool.arns.iter().nth(self.rng.below(pool.arns.len()));
            if let Some(arn) = real.filter(|_| self.rng.chance(75)) {
                return Some(arn.clone());
            }
            let fake = [
                "arn:aws:iam::000000000000:role/fuzz-role",
                "arn:aws:iam::aws:policy/ReadOnlyAccess",
                "arn:aws:iam::000000000000:user/nobody",
                "arn:",
            ];
            return Some(self.rng.pick(&fake).to_string());
        }
        if matches!(
            name,
            "UserName" | "RoleName" | "GroupName" | "InstanceProfileName" | "PolicyName"
        ) {
            let names = [
                "fuzz-user",
                "fuzz-role",
                "fuzz-group",
                "fuzz-profile",
                "fuzz-policy",
            ];
            return Some(self.rng.pick(&names).to_string());
        }
        if name.ends_with("Port") {
            return Some(self.rng.pick(&["22", "0", "65535", "-1"]).to_string());
        }
        None
    }
}

/// `application/x-www-form-urlencoded`, as the SDKs write it.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Who signs the fuzz's requests under `--auth enforce`.
#[derive(Clone)]
struct Signer {
    key: String,
    secret: String,
}

/// A form POST to `service`: signed by `signer`, or unsigned but routed by a credential scope
/// as a signed one is.
fn request(service: &str, region: &str, body: String, signer: Option<&Signer>) -> Request<Body> {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("host", "127.0.0.1:4566".parse().unwrap());
    headers.insert(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8"
            .parse()
            .unwrap(),
    );
    let authorization = match signer {
        None => format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/{region}/{service}/aws4_request, \
             SignedHeaders=host, Signature=00"
        ),
        Some(signer) => {
            let amz_date = time::OffsetDateTime::now_utc()
                .format(time::macros::format_description!(
                    "[year][month][day]T[hour][minute][second]Z"
                ))
                .unwrap();
            headers.insert("x-amz-date", amz_date.parse().unwrap());
            let sig = Signature {
                access_key: signer.key.clone(),
                scope_date: amz_date[..8].into(),
                region: region.into(),
                service: service.into(),
                amz_date: amz_date.clone(),
                signed_headers: ["content-type", "host", "x-amz-date"]
                    .map(String::from)
                    .to_vec(),
                signature: String::new(),
                session_token: None,
                expires: None,
            };
            let req = HttpRequest {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body: body.as_bytes(),
            };
            let (_, to_sign) = sigv4::canonical(&req, &sig, false);
            let key = sigv4::signing_key(&signer.secret, &sig.scope_date, region, service);
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
            mac.update(to_sign.as_bytes());
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{}/{region}/{service}/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, Signature={}",
                signer.key,
                sig.scope_date,
                sigv4::hex(&mac.finalize().into_bytes())
            )
        }
    };
    let mut out = Request::builder().method("POST").uri("/");
    for (k, v) in &headers {
        out = out.header(k, v);
    }
    out.header("authorization", authorization)
        .body(Body::from(body))
        .unwrap()
}

enum Outcome {
    Answered(u16, String),
    Panicked(String),
    Hung,
}

/// Sends `body` through the whole router on its own task, so that a panic is reported
/// rather than taking the test down with it.
async fn send(app: &axum::Router, signer: Option<&Signer>, service: &str, body: String) -> Outcome {
    send_to(app, signer, service, "us-east-1", body).await
}

async fn send_to(
    app: &axum::Router,
    signer: Option<&Signer>,
    service: &str,
    region: &str,
    body: String,
) -> Outcome {
    let req = request(service, region, body, signer);
    let app = app.clone();
    let task = tokio::spawn(async move {
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    });
    match tokio::time::timeout(Duration::from_secs(20), task).await {
        Ok(Ok((status, body))) => Outcome::Answered(status, body),
        Ok(Err(e)) => Outcome::Panicked(e.to_string()),
        Err(_) => Outcome::Hung,
    }
}

/// 5xx answers known to come from code outside the handlers (reported, not yet fixed), each
/// matched narrowly and saying why, to go when its cause is fixed. None are known today.
fn known(_service: &str, _op: &str, _body: &str, _response: &str) -> Option<&'static str> {
    None
}

/// A few real resources, so that generated ids often exist.
async fn seed_state(app: &axum::Router, signer: Option<&Signer>, pool: &mut Pool) {
    let calls: &[(&str, &str)] = &[
        ("ec2", "Action=CreateVpc&CidrBlock=10.0.0.0/16"),
        ("ec2", "Action=DescribeImages&Owner.1=amazon&MaxResults=5"),
        (
            "ec2",
            "Action=CreateKeyPair&KeyName=fuzz-key&KeyType=ed25519",
        ),
        ("iam", "Action=CreateUser&UserName=fuzz-user"),
        ("iam", "Action=CreateGroup&GroupName=fuzz-group"),
        (
            "iam",
            "Action=CreatePolicy&PolicyName=fuzz-policy&PolicyDocument=POLICY",
        ),
        (
            "iam",
            "Action=CreateRole&RoleName=fuzz-role&AssumeRolePolicyDocument=TRUST",
        ),
        (
            "iam",
            "Action=CreateInstanceProfile&InstanceProfileName=fuzz-profile",
        ),
        ("iam", "Action=CreateAccessKey&UserName=fuzz-user"),
    ];
    for (svc, form) in calls {
        let form = form
            .replace("POLICY", &enc(POLICY))
            .replace("TRUST", &enc(TRUST));
        seed_call(app, signer, pool, svc, &form).await;
    }
    let vpc = pool.id(&mut Rng(0), "vpc").expect("a VPC");
    let calls = [
        format!("Action=CreateSubnet&VpcId={vpc}&CidrBlock=10.0.1.0/24"),
        format!("Action=CreateSecurityGroup&VpcId={vpc}&GroupName=fuzz&GroupDescription=fuzz"),
    ];
    for form in calls {
        seed_call(app, signer, pool, "ec2", &form).await;
    }
    let subnet = pool.id(&mut Rng(0), "subnet").expect("a subnet");
    let ami = pool.id(&mut Rng(0), "ami").expect("an image");
    let calls = [
        format!(
            "Action=RunInstances&ImageId={ami}&MinCount=1&MaxCount=1&InstanceType=t3.micro&SubnetId={subnet}"
        ),
        "Action=DescribeRouteTables".to_string(),
        "Action=DescribeNetworkAcls".to_string(),
        "Action=DescribeVpcs&MaxResults=5".to_string(),
    ];
    for form in calls {
        seed_call(app, signer, pool, "ec2", &form).await;
    }
}

async fn seed_call(
    app: &axum::Router,
    signer: Option<&Signer>,
    pool: &mut Pool,
    svc: &str,
    form: &str,
) -> String {
    let version = service(svc).unwrap().api_version;
    let body = format!("{form}&Version={version}");
    match send(app, signer, svc, body.clone()).await {
        Outcome::Answered(200, text) => {
            pool.learn(&text);
            text
        }
        Outcome::Answered(status, text) => panic!("seeding: {body} answered {status}: {text}"),
        _ => panic!("seeding: {body} failed"),
    }
}

/// At most 3,000 characters of `s` (a 40 KB policy document would bury the cause).
fn shorten(s: &str) -> String {
    match s.char_indices().nth(3_000) {
        Some((at, _)) => format!("{}… ({} bytes)", &s[..at], s.len()),
        None => s.to_string(),
    }
}

/// A character XML 1.0 cannot carry, even as a character reference, if `text` has one.
fn forbidden_char(text: &str) -> Option<char> {
    text.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
    })
}

/// Why `text` is not a well-formed XML document, if it is not: SDKs fail to parse such an
/// answer as surely as they fail on a 500, and as surely on a character XML 1.0 cannot
/// carry (`xml::escape` replaces them).
fn xml_problem(text: &str) -> Option<String> {
    if let Some(c) = forbidden_char(text) {
        return Some(format!("a character XML cannot carry: {:?}", c));
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth = depth.saturating_sub(1),
            // Only XML's own entities and character references resolve.
            Ok(quick_xml::events::Event::GeneralRef(r)) => {
                let name = r.xml10_content();
                if let Err(e) = quick_xml::escape::unescape(&format!("&{name};")) {
                    return Some(e.to_string());
                }
            }
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Some(e.to_string()),
        }
    }
    (depth != 0).then(|| "unclosed elements".to_string())
}

/// The error code of an AWS error document, if it is one.
fn code_of(text: &str) -> &str {
    text.split_once("<Code>")
        .and_then(|(_, r)| r.split_once("</Code>"))
        .map_or("", |(c, _)| c)
}

/// Runs `rounds` rounds over every operation and fails on any 5xx, panic or hang.
async fn fuzz(auth: Mode, rounds: usize, seed: u64) {
    let verbose = std::env::var_os("KUMORI_FUZZ_VERBOSE").is_some();
    let store = Store::open_memory().await.unwrap();
    let config = Config {
        auth,
        ..Config::default()
    };
    let signer = match auth {
        Mode::Off => None,
        _ => Some(enforced_signer(&store, &config).await),
    };
    let app = router(store, config);
    let mut pool = Pool::default();
    seed_state(&app, signer.as_ref(), &mut pool).await;

    // Every operation of the three services; those answering 501 drop out.
    let mut ops: Vec<(&'static str, &'static Model, &'static str)> = Vec::new();
    for svc in ["ec2", "iam", "sts"] {
        let model = service(svc).unwrap().model();
        ops.extend(model.operations().map(|o| (svc, model, o.name.as_str())));
    }
    let mut rng = Rng(seed);
    let started = Instant::now();
    // Per operation: how many failed, and the first few in full.
    let mut failures: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut slowest: Vec<(Duration, String)> = Vec::new();
    let (mut sent, mut succeeded, mut skipped_known) = (0usize, 0usize, 0usize);
    // Answers carrying a character XML forbids (see `known_xml`).
    for _ in 0..rounds {
        // A new order each round (Fisher–Yates).
        for i in (1..ops.len()).rev() {
            ops.swap(i, rng.below(i + 1));
        }
        let mut unimplemented = BTreeSet::new();
        for &(svc, model, op) in &ops {
            let mut generator = Gen {
                model,
                ec2: svc == "ec2",
                rng: Rng(rng.next()),
            };
            let mut pairs = Vec::new();
            if let Some(input) = model.operation(op).and_then(|o| o.input) {
                generator.structure(&pool, input, "", 0, &mut pairs);
            }
            let mut body = format!("Action={op}&Version={}", model.api_version);
            for (k, v) in &pairs {
                body.push_str(&format!("&{}={}", enc(k), enc(v)));
            }
            sent += 1;
            let t = Instant::now();
            // Mostly the seeded region; sometimes another partition's, or one that does not
            // exist (whose zones, default VPC and images kumori must still not trip on).
            let region = if rng.chance(90) {
                "us-east-1"
            } else {
                *rng.pick(&[
                    "eu-west-1",
                    "cn-north-1",
                    "us-gov-west-1",
                    "xx-nowhere-9",
                    "%",
                    "",
                ])
            };
            let outcome = send_to(&app, signer.as_ref(), svc, region, body.clone()).await;
            slowest.push((t.elapsed(), format!("{svc}:{op}")));
            slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
            slowest.truncate(5);
            let failure = match outcome {
                Outcome::Answered(501, _) => {
                    unimplemented.insert((svc, op));
                    continue;
                }
                Outcome::Answered(status, text)
                    if status < 500
                        && let Some(problem) = xml_problem(&text) =>
                {
                    format!(
                        "answered {status} with a document SDKs cannot read ({problem}): {text}"
                    )
                }
                Outcome::Answered(status, text) if status < 500 => {
                    if status == 200 {
                        succeeded += 1;
                        pool.learn(&text);
                    }
                    *codes
                        .entry(format!("{status} {}", code_of(&text)))
                        .or_default() += 1;
                    if verbose {
                        eprintln!("{svc}:{op} {status} {}", code_of(&text));
                    }
                    continue;
                }
                Outcome::Answered(status, text) => {
                    if let Some(why) = known(svc, op, &body, &text) {
                        skipped_known += 1;
                        eprintln!("known 5xx skipped ({why}): {svc}:{op}");
                        continue;
                    }
                    format!("answered {status}: {text}")
                }
                Outcome::Panicked(e) => format!("panicked: {e}"),
                Outcome::Hung => "no answer within 20 s".to_string(),
            };
            let entry = failures.entry(format!("{svc}:{op}")).or_default();
            entry.0 += 1;
            if entry.1.len() < 3 {
                entry.1.push(format!(
                    "  request ({region}): {}\n  {}",
                    shorten(&body),
                    shorten(&failure)
                ));
            }
        }
        ops.retain(|(svc, _, op)| !unimplemented.contains(&(*svc, *op)));
    }
    eprintln!(
        "model fuzz ({auth:?}): {sent} requests, {succeeded} answered 200, {} operations not \
         answering 501; {skipped_known} known 5xx skipped; {:.1?}",
        ops.len(),
        started.elapsed()
    );
    eprintln!("slowest: {slowest:?}");
    if verbose {
        let mut tally: Vec<_> = codes.iter().collect();
        tally.sort_by_key(|t| std::cmp::Reverse(*t.1));
        for (code, n) in tally {
            eprintln!("{n:7} {code}");
        }
    }
    let report: Vec<String> = failures
        .iter()
        .map(|(op, (n, first))| format!("{op}: {n} failed; the first:\n{}", first.join("\n")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} operations got a 5xx, a panic or no answer:\n\n{}",
        failures.len(),
        report.join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_generated_input_gets_a_5xx() {
    let rounds = env_or("KUMORI_FUZZ_CASES", 12);
    fuzz(
        Mode::Off,
        rounds,
        env_or("KUMORI_FUZZ_SEED", 0x6b75_6d6f_7269),
    )
    .await;
}

/// The same, signed by an IAM user under `--auth enforce`: authorization reads every
/// input too (resource ARNs, condition keys, resource tags) before the handler does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_generated_input_gets_a_5xx_under_enforce() {
    let rounds = env_or("KUMORI_FUZZ_CASES", 12) / 2;
    let seed: u64 = env_or("KUMORI_FUZZ_SEED", 0x6b75_6d6f_7269);
    fuzz(Mode::Enforce, rounds.max(1), seed ^ 0xe4f0).await;
}

/// The account's root key, then an IAM user (made and keyed by the root) whose policies
/// allow nearly everything under conditions, so that every request is evaluated in full.
async fn enforced_signer(store: &Store, config: &Config) -> Signer {
    let root = Signer {
        key: "AKIAKUMORIFUZZROOT01".into(),
        secret: "fuzz-root-secret-0000000000000000000000".into(),
    };
    let ctx = kumori_services::Ctx {
        store,
        account: &config.account_id,
        region: &config.default_region,
        limits: &config.limits,
        caller: None,
    };
    kumori_services::auth::ensure_root_key(&ctx, Some((root.key.clone(), root.secret.clone())))
        .await
        .unwrap();
    let app = router(store.clone(), config.clone());
    let mut pool = Pool::default();
    let policy = enc(SIGNER_POLICY);
    for form in [
        "Action=CreateUser&UserName=fuzz-signer".to_string(),
        format!("Action=PutUserPolicy&UserName=fuzz-signer&PolicyName=all&PolicyDocument={policy}"),
    ] {
        seed_call(&app, Some(&root), &mut pool, "iam", &form).await;
    }
    let made = seed_call(
        &app,
        Some(&root),
        &mut pool,
        "iam",
        "Action=CreateAccessKey&UserName=fuzz-signer",
    )
    .await;
    let field = |name: &str| {
        let open = format!("<{name}>");
        let (_, rest) = made.split_once(&open).expect("a new key");
        rest.split_once('<').unwrap().0.to_string()
    };
    Signer {
        key: field("AccessKeyId"),
        secret: field("SecretAccessKey"),
    }
}

/// Everything is allowed, except where conditions on the request say otherwise: each
/// request is evaluated against tags, addresses, regions and ARNs drawn from its input.
const SIGNER_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Action":"*","Resource":"*"},
{"Effect":"Deny","Action":"ec2:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/deny":"yes"}}},
{"Effect":"Deny","Action":"ec2:*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["deny"]}}},
{"Effect":"Deny","Action":"ec2:RunInstances","Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"StringEquals":{"ec2:InstanceType":"x1e.32xlarge"}}},
{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["0.0.0.0/0","::/0"]},"Bool":{"aws:ViaAWSService":"false"},"StringNotEquals":{"aws:RequestedRegion":"us-east-1"}}},
{"Effect":"Deny","Action":["iam:DeleteUser","iam:DeleteAccessKey","iam:UpdateAccessKey","iam:PutUserPolicy","iam:DeleteUserPolicy","iam:AttachUserPolicy","iam:PutUserPermissionsBoundary","iam:AddUserToGroup"],"Resource":"arn:aws:iam::*:user/fuzz-signer"}
]}"#;

/// Found by this fuzz: IAM took tags, paths and role descriptions with control characters
/// (which its model's patterns refuse) and then answered every read of them with a document
/// no SDK can parse.
#[tokio::test]
async fn iam_refuses_control_characters_its_patterns_exclude() {
    let app = router(Store::open_memory().await.unwrap(), Config::default());
    let trust = enc(TRUST);
    for form in [
        "Action=CreateUser&UserName=u1&Tags.member.1.Key=k&Tags.member.1.Value=a%00b".to_string(),
        "Action=CreateUser&UserName=u2&Tags.member.1.Key=%01&Tags.member.1.Value=v".to_string(),
        "Action=CreateUser&UserName=u3&Path=%2Fa%0Ab%2F".to_string(),
        format!("Action=CreateRole&RoleName=r1&AssumeRolePolicyDocument={trust}&Tags.member.1.Key=k&Tags.member.1.Value=%00"),
        format!("Action=CreateRole&RoleName=r2&AssumeRolePolicyDocument={trust}&Description=a%00"),
        "Action=CreateInstanceProfile&InstanceProfileName=p1&Tags.member.1.Key=k&Tags.member.1.Value=%1F".to_string(),
    ] {
        let body = format!("{form}&Version=2010-05-08");
        let Outcome::Answered(status, text) = send(&app, None, "iam", body.clone()).await else {
            panic!("{body}: no answer");
        };
        assert_eq!(status, 400, "{body}: {text}");
        assert_eq!(code_of(&text), "ValidationError", "{body}: {text}");
        assert_eq!(forbidden_char(&text), None, "{body}: {text}");
    }
    // What the patterns allow still goes in: letters of any script, spaces, signs.
    let body = "Action=CreateUser&UserName=u4&Path=%2Fteam%2Bops%2F&Tags.member.1.Key=Name&\
                Tags.member.1.Value=%C3%A9quipe%20ops%3A%2F%3D%2B-%40&Version=2010-05-08";
    let Outcome::Answered(status, text) = send(&app, None, "iam", body.into()).await else {
        panic!("no answer");
    };
    assert_eq!(status, 200, "{text}");
}
