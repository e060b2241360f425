//! Fuzzing of everything kumori reads before it knows who is asking: query/ec2 forms,
//! rest-xml bodies, JSON bodies and SigV4. The property is what an unauthenticated caller
//! probes: no input panics, none exhausts a small stack, and every refusal is a 4xx.
//!
//! Each case runs on a thread with a 256 KiB stack, so recursion that grows with the input
//! overflows here long before it would on a server thread; an overflow aborts the test binary.
//!
//! CI runs a few hundred cases per generator from a fixed seed (seconds). By hand:
//!
//! ```text
//! KUMORI_FUZZ_CASES=100000 cargo test -p kumori-protocol --test fuzz --release
//! KUMORI_FUZZ_SEED=7 ...   # explore from another seed
//! ```
//!
//! `tests/fuzz-corpus/*.http` are nasty requests replayed on every run (format: [`corpus`]).

use http::{HeaderMap, HeaderName, HeaderValue};
use kumori_protocol::model::{Kind, Member, Model, SERVICES, ShapeId, service};
use kumori_protocol::{HttpRequest, decode, encode_error, model_of, sigv4};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use time::OffsetDateTime;

const STACK: usize = 256 * 1024;
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// Cases per generator, divided by `weight` for the expensive ones (huge bodies).
fn config(weight: u32) -> Config {
    let cases: u32 = std::env::var("KUMORI_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let seed: u64 = std::env::var("KUMORI_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6b75_6d6f_7269);
    Config {
        cases: (cases / weight).max(1),
        // Deterministic in CI; what a long run finds goes into tests/fuzz-corpus by hand.
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    }
}

/// A request, owned so that it can move onto the small-stack thread.
#[derive(Clone)]
struct Req {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// Shrunk failures print the request; a 350 KB body would drown the cause.
impl std::fmt::Debug for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = |b: &[u8]| {
            let s = String::from_utf8_lossy(&b[..b.len().min(2000)]).into_owned();
            if b.len() > 2000 {
                format!("{s}… ({} bytes)", b.len())
            } else {
                s
            }
        };
        f.debug_struct("Req")
            .field("method", &self.method)
            .field("path", &cut(self.path.as_bytes()))
            .field("query", &cut(self.query.as_bytes()))
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), cut(v)))
                    .collect::<Vec<_>>(),
            )
            .field("body", &cut(&self.body))
            .finish()
    }
}

impl Req {
    fn new(method: &str, path: &str, query: &str) -> Req {
        Req {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self
    }

    fn form(self) -> Req {
        self.header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
    }
}

/// Parses every vendored model up front, on a normal stack: the fuzz is about requests.
fn warm_models() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for s in &SERVICES {
            s.model();
        }
    });
}

/// Decodes `req` (and reads and checks its signature) on a 256 KiB stack. `Err` says what
/// broke the property: a panic, or a refusal that is not a 4xx.
fn check_at(req: Req, now: OffsetDateTime) -> Result<(), String> {
    warm_models();
    let run = move || {
        let mut headers = HeaderMap::new();
        for (k, v) in &req.headers {
            // Names or values HTTP itself refuses never reach kumori.
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_bytes(v),
            ) {
                headers.append(n, v);
            }
        }
        let r = HttpRequest {
            method: &req.method,
            path: &req.path,
            query: &req.query,
            headers: &headers,
            body: &req.body,
        };
        // The server authenticates before it acts on what it decoded, and does both for
        // every request: neither may panic.
        if let Ok(sig) = sigv4::parse(&r) {
            let _ = sigv4::verify(&r, &sig, SECRET, now, false);
            let _ = sigv4::verify(&r, &sig, SECRET, now, true);
        }
        let _ = model_of(&r);
        match decode(&r, "us-east-1") {
            Ok(_) => Ok(()),
            Err(f) => {
                // The refusal is rendered too; its message may quote hostile input.
                let resp = encode_error(f.model, &f.error, "rid");
                if !(400..500).contains(&f.error.status) || resp.status != f.error.status {
                    return Err(format!(
                        "refused with {} {}: {}",
                        f.error.status, f.error.code, f.error.message
                    ));
                }
                match xml_problem(resp.content_type, &resp.body) {
                    Some(p) => Err(format!(
                        "refused in a document SDKs cannot read ({p}): {}",
                        resp.body
                    )),
                    None => Ok(()),
                }
            }
        }
    };
    match std::thread::Builder::new()
        .name("fuzz-decode".into())
        .stack_size(STACK)
        .spawn(run)
        .expect("spawn a decode thread")
        .join()
    {
        Ok(r) => r,
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )),
    }
}

/// Why an XML error document is not well-formed, if it is not, or carries a character XML
/// 1.0 cannot (`xml::escape` replaces those, also where an error quotes the input).
fn xml_problem(content_type: &str, body: &str) -> Option<String> {
    if !content_type.contains("xml") {
        return None;
    }
    if let Some(c) = body.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
    }) {
        return Some(format!("a character XML cannot carry: {c:?}"));
    }
    let mut reader = quick_xml::Reader::from_str(body);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth = depth.saturating_sub(1),
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

fn check(req: Req) -> Result<(), String> {
    check_at(req, OffsetDateTime::now_utc())
}

// ---- shared pieces -----------------------------------------------------------------------

/// Values that have broken parsers before: bounds of every integer width, float edge cases,
/// dates out of range, ids, CIDRs, escapes and control characters.
const NASTY: &[&str] = &[
    "",
    " ",
    "true",
    "TRUE",
    "false",
    "0",
    "-0",
    "-1",
    "1",
    "5",
    "1000",
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999999999999",
    "1e308",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "-inf",
    "0x10",
    " 5 ",
    "1.5",
    "1970-01-01T00:00:00Z",
    "2024-02-30T25:61:61Z",
    "9999-12-31T23:59:59.999999999Z",
    "-62135596800",
    "253402300800",
    "1e20",
    "vpc-12345678",
    "i-0123456789abcdef0",
    "sg-1",
    "subnet-",
    "10.0.0.0/16",
    "0.0.0.0/0",
    "::/0",
    "10.0.0.0/33",
    "300.1.1.1",
    "arn:aws:iam::000000000000:role/x",
    "arn:::::",
    "{\"Version\":\"2012-10-17\",\"Statement\":[]}",
    "{",
    "%",
    "%zz",
    "%FF%FE",
    "\u{0}",
    "\u{7f}",
    "\r\n",
    "🦀",
    "\u{FEFF}",
    "a.b.c",
    "&amp;",
    "<x>",
    "]]>",
];

fn nasty() -> impl Strategy<Value = String> {
    prop::sample::select(NASTY).prop_map(str::to_string)
}

/// Text an attacker might send: mostly nasty constants, random printable or arbitrary
/// characters, sometimes very long.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => nasty(),
        2 => "[ -~]{0,24}",
        2 => any::<String>(),
        1 => (0usize..70_000, prop::sample::select(&["A", "%41", "é", ".", "&"][..]))
            .prop_map(|(n, s)| s.repeat(n)),
    ]
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The key a member travels under on a form (botocore's serializers; query.rs mirrors it).
fn wire_name(m: &Member, ec2: bool) -> String {
    if ec2 {
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

/// A list index: mostly right (1..5), sometimes what a hostile client sends instead.
fn index(c: u16) -> String {
    match c % 16 {
        0 => "0".into(),
        1 => "-1".into(),
        2 => "4294967296".into(),
        3 => "01".into(),
        4 => "1e3".into(),
        5 => String::new(),
        6 => "2147483648".into(),
        _ => (c % 5 + 1).to_string(),
    }
}

// ---- query and ec2 forms -----------------------------------------------------------------

const QUERY_SERVICES: &[&str] = &["ec2", "iam", "sts", "elbv2", "autoscaling", "rds"];

/// Operations with the richest inputs, fuzzed more often than their share.
const HOT: &[(&str, &str)] = &[
    ("ec2", "DescribeInstances"),
    ("ec2", "RunInstances"),
    ("ec2", "DescribeSecurityGroups"),
    ("ec2", "AuthorizeSecurityGroupIngress"),
    ("ec2", "CreateTags"),
    ("ec2", "CreateLaunchTemplate"),
    ("ec2", "ModifyInstanceAttribute"),
    ("ec2", "CreateNetworkAcl"),
    ("ec2", "DescribeVpcs"),
    ("ec2", "CreateNetworkInsightsPath"),
    ("iam", "CreateUser"),
    ("iam", "PutUserPolicy"),
    ("iam", "CreateRole"),
    ("iam", "SimulatePrincipalPolicy"),
    ("iam", "TagUser"),
    ("sts", "AssumeRole"),
    ("sts", "GetCallerIdentity"),
    ("elbv2", "CreateLoadBalancer"),
    ("autoscaling", "CreateAutoScalingGroup"),
    ("rds", "CreateDBInstance"),
];

/// Which service and operation a generated form is for.
fn pick_operation(which: u8, a: u16, b: u16) -> (&'static str, &'static Model, String) {
    if which.is_multiple_of(4) {
        let svc = QUERY_SERVICES[a as usize % QUERY_SERVICES.len()];
        let model = service(svc).unwrap().model();
        let ops: Vec<_> = model.operations().collect();
        (svc, model, ops[b as usize % ops.len()].name.clone())
    } else {
        let (svc, op) = HOT[a as usize % HOT.len()];
        (svc, service(svc).unwrap().model(), op.to_string())
    }
}

/// A parameter name following the input shape by `choices` (a member, an index, a map
/// entry at each level), and the shape it ends on.
fn guided_key(model: &Model, root: ShapeId, ec2: bool, choices: &[u16]) -> (Vec<String>, ShapeId) {
    let mut segs = Vec::new();
    let mut shape = root;
    let mut member_flat = false;
    for &c in choices {
        let s = model.shape(shape);
        match &s.kind {
            Kind::Structure { members } if !members.is_empty() => {
                let m = &members[c as usize % members.len()];
                segs.push(wire_name(m, ec2));
                member_flat = m.flattened;
                shape = m.shape;
            }
            Kind::List { member } => {
                if !(ec2 || s.flattened || member_flat) {
                    segs.push(member.location_name.clone().unwrap_or("member".into()));
                }
                segs.push(index(c));
                member_flat = false;
                shape = member.shape;
            }
            Kind::Map { key, value } => {
                if !s.flattened {
                    segs.push("entry".into());
                }
                segs.push(index(c >> 1));
                let (m, default) = if c & 1 == 0 {
                    (key, "key")
                } else {
                    (value, "value")
                };
                segs.push(m.location_name.clone().unwrap_or(default.into()));
                member_flat = false;
                shape = m.shape;
            }
            _ => break,
        }
    }
    (segs, shape)
}

/// A value that fits `shape` (an enum value, an integer in range, a boolean, a timestamp),
/// so that generated requests get past validation into the deeper paths.
fn fitting_value(model: &Model, shape: ShapeId, c: u16) -> Option<String> {
    let s = model.shape(shape);
    if let Some(values) = &s.enum_values {
        return values.get(c as usize % values.len().max(1)).cloned();
    }
    match s.kind {
        Kind::Integer | Kind::Long => {
            let lo = s.min.unwrap_or(0.0) as i64;
            let hi = s.max.map(|m| m as i64).unwrap_or(lo + 100);
            let span = (hi - lo).max(0) as u64 + 1;
            Some((lo + (c as u64 % span) as i64).to_string())
        }
        Kind::Boolean => Some(if c & 1 == 0 { "true" } else { "false" }.into()),
        Kind::Timestamp => Some("2026-01-02T03:04:05Z".into()),
        Kind::String => Some(format!("x{c}")),
        _ => None,
    }
}

#[derive(Clone, Debug)]
struct ParamGen {
    mode: u8,
    choices: Vec<u16>,
    segments: Vec<String>,
    value: String,
    fit: u16,
    raw: bool,
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "Filter",
                "Name",
                "Value",
                "member",
                "entry",
                "key",
                "value",
                "Tag",
                "Key",
                "InstanceId",
                "MaxResults",
                "Action",
                "Version",
                "1",
                "0",
                "-1",
                "",
                "99999999999",
                "TagSpecification",
                "IpPermissions",
                "X-Amz-Date",
            ][..]
        )
        .prop_map(str::to_string),
        "[A-Za-z0-9%+=&]{0,8}",
    ]
}

fn param() -> impl Strategy<Value = ParamGen> {
    (
        0u8..10,
        prop::collection::vec(any::<u16>(), 1..10),
        prop::collection::vec(segment(), 1..6),
        hostile_text(),
        any::<u16>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(mode, choices, segments, value, fit, raw)| ParamGen {
            mode,
            choices,
            segments,
            value,
            fit,
            raw,
        })
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A form request of a real operation with parameters built from its input shape, mangled.
fn query_request() -> impl Strategy<Value = Req> {
    (
        (any::<u8>(), any::<u16>(), any::<u16>()),
        prop::collection::vec(param(), 0..24),
        (0u8..4, prop_oneof![6 => 0u8..3, 1 => Just(3u8)], any::<u16>()),
        prop_oneof![4 => Just(Vec::new()), 1 => prop::collection::vec(any::<u8>(), 1..8)],
        any::<u16>(),
    )
        .prop_map(|((which, a, b), params, (routing, placement, fill), noise, at)| {
            let (svc, model, op) = pick_operation(which, a, b);
            let ec2 = svc == "ec2";
            let input = model.operation(&op).and_then(|o| o.input);
            let mut pairs = vec![format!("Action={op}")];
            if routing != 1 {
                pairs.push(format!("Version={}", model.api_version));
            }
            // Mostly with the required scalars given, so that the walk reaches the rest.
            if let Some(root) = input
                && fill % 4 != 0
                && let Kind::Structure { members } = &model.shape(root).kind
            {
                for m in members.iter().filter(|m| m.required) {
                    if let Some(v) = fitting_value(model, m.shape, fill) {
                        pairs.push(format!("{}={}", enc(&wire_name(m, ec2)), enc(&v)));
                    }
                }
            }
            for p in &params {
                let (key, leaf) = match (p.mode, input) {
                    (0..=6, Some(root)) => {
                        let (k, leaf) = guided_key(model, root, ec2, &p.choices);
                        (k, Some(leaf))
                    }
                    (9, Some(root)) => {
                        let (mut k, _) = guided_key(model, root, ec2, &p.choices);
                        k.extend(p.segments.iter().cloned());
                        (k, None)
                    }
                    _ => (p.segments.clone(), None),
                };
                let key = key.join(".");
                // Half the time a value the model accepts, so the walk goes on past it.
                let value = match leaf {
                    Some(leaf) if p.fit % 2 == 0 => {
                        fitting_value(model, leaf, p.fit / 2).unwrap_or(p.value.clone())
                    }
                    _ => p.value.clone(),
                };
                if p.raw {
                    pairs.push(format!("{key}={value}"));
                } else {
                    pairs.push(format!("{}={}", enc(&key), enc(&value)));
                }
            }
            let mut form = pairs.join("&").into_bytes();
            if !noise.is_empty() {
                let at = at as usize % (form.len() + 1);
                form.splice(at..at, noise);
            }
            let mut req = match placement {
                0 => Req::new("POST", "/", "").form().body(form),
                1 => Req::new("GET", "/", &String::from_utf8_lossy(&form)),
                2 => {
                    let cut = form.len() / 2;
                    Req::new("POST", "/", &String::from_utf8_lossy(&form[cut..]))
                        .form()
                        .body(form[..cut].to_vec())
                }
                // A form body without the form content type: ignored, as AWS ignores it.
                _ => Req::new("POST", "/", "").body(form),
            };
            req = req.header("host", "127.0.0.1:4566");
            if routing != 0 {
                let signing = service(svc).unwrap().signing_name;
                req = req.header(
                    "authorization",
                    format!(
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/{signing}/aws4_request, SignedHeaders=host, Signature=00"
                    ),
                );
            }
            req
        })
}

/// Parameter names nested far deeper than any model, in several shapes.
fn deep_key_request() -> impl Strategy<Value = Req> {
    (
        prop_oneof![3 => 0usize..80, 1 => 0usize..20_000],
        prop::sample::select(&["A", "1", "Filter.1", "member.1", "", "entry.1.value"][..]),
        prop::sample::select(
            &[
                ("ec2", "DescribeInstances", "2016-11-15"),
                ("ec2", "RunInstances", "2016-11-15"),
                ("iam", "CreateUser", "2010-05-08"),
                ("sts", "AssumeRole", "2011-06-15"),
            ][..],
        ),
        any::<bool>(),
    )
        .prop_map(|(depth, seg, (_, op, version), in_body)| {
            let key = vec![seg; depth.max(1)].join(".");
            let form = format!("Action={op}&Version={version}&{key}=x");
            if in_body {
                Req::new("POST", "/", "").form().body(form)
            } else {
                Req::new("GET", "/", &form)
            }
        })
}

/// Many parameters: around and past the cap, as sparse or repeated names.
fn many_params_request() -> impl Strategy<Value = Req> {
    (
        prop_oneof![0usize..2_000, 19_990usize..20_010, 20_000usize..40_000],
        0u8..5,
        prop::sample::select(&["DescribeInstances", "RunInstances", "CreateTags"][..]),
    )
        .prop_map(|(n, style, op)| {
            let mut form = format!("Action={op}&Version=2016-11-15");
            for i in 0..n {
                let p = match style {
                    0 => format!("&InstanceId.{}=i-{i:08x}", i + 1),
                    1 => format!("&Filter.{}.Value.{}=x", i % 50 + 1, i + 1),
                    2 => format!("&Tag.{}.Key=k&Tag.{}.Value=v", i + 1, i + 1),
                    3 => "&InstanceId.1=i-1".to_string(),
                    _ => format!("&InstanceId.{}=i-1", u32::MAX as usize - i),
                };
                form.push_str(&p);
            }
            Req::new("POST", "/", "").form().body(form)
        })
}

// ---- rest-xml ----------------------------------------------------------------------------

/// Element names of the rest-xml inputs kumori is likely to meet, and some it should not.
const XML_NAMES: &[&str] = &[
    "CreateHostedZoneRequest",
    "Name",
    "CallerReference",
    "HostedZoneConfig",
    "Comment",
    "PrivateZone",
    "VPC",
    "VPCRegion",
    "VPCId",
    "ChangeResourceRecordSetsRequest",
    "ChangeBatch",
    "Changes",
    "Change",
    "Action",
    "ResourceRecordSet",
    "TTL",
    "Weight",
    "ResourceRecords",
    "ResourceRecord",
    "Value",
    "Tagging",
    "TagSet",
    "Tag",
    "Key",
    "Delete",
    "Object",
    "Quiet",
    "CreateBucketConfiguration",
    "LocationConstraint",
    "x:Name",
    "a",
];

#[derive(Clone, Debug)]
enum Xml {
    Element(String, Vec<(String, String)>, Vec<Xml>),
    Text(String),
    CData(String),
    Entity(String),
    Comment(String),
    Pi(String),
}

fn xml_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(XML_NAMES).prop_map(str::to_string),
        2 => "[A-Za-z_][A-Za-z0-9_.:-]{0,8}",
        1 => prop::sample::select(&["", "1a", "a b", ":x", "x:", "xmlns:x", "&", "é"][..])
            .prop_map(str::to_string),
    ]
}

fn xml_tree() -> impl Strategy<Value = Xml> {
    let leaf = prop_oneof![
        4 => hostile_text().prop_map(Xml::Text),
        1 => hostile_text().prop_map(Xml::CData),
        1 => prop::sample::select(&[
            "amp", "lt", "gt", "quot", "apos", "#65", "#x41", "#0", "#x110000", "#xD800",
            "#xFFFFFFFFFFFFFFFF", "#-1", "#", "#x", "bogus", "", "lol9", "xxe",
        ][..])
        .prop_map(|e| Xml::Entity(e.to_string())),
        1 => "[ -~]{0,16}".prop_map(Xml::Comment),
        1 => "[ -~]{0,16}".prop_map(Xml::Pi),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        (
            xml_name(),
            prop::collection::vec((xml_name(), hostile_text()), 0..2),
            prop::collection::vec(inner, 0..8),
        )
            .prop_map(|(n, a, k)| Xml::Element(n, a, k))
    })
}

fn write_xml(x: &Xml, out: &mut String) {
    match x {
        Xml::Element(name, attrs, kids) => {
            out.push('<');
            out.push_str(name);
            for (k, v) in attrs {
                out.push_str(&format!(" {k}=\"{v}\""));
            }
            if kids.is_empty() {
                out.push_str("/>");
                return;
            }
            out.push('>');
            for k in kids {
                write_xml(k, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        // Raw, unescaped: half of what a hostile client sends is not well-formed.
        Xml::Text(t) => out.push_str(t),
        Xml::CData(t) => out.push_str(&format!("<![CDATA[{t}]]>")),
        Xml::Entity(e) => out.push_str(&format!("&{e};")),
        Xml::Comment(t) => out.push_str(&format!("<!--{t}-->")),
        Xml::Pi(t) => out.push_str(&format!("<?x {t}?>")),
    }
}

const PROLOGS: &[&str] = &[
    "",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
    "\u{FEFF}<?xml version=\"1.0\"?>",
    "<!DOCTYPE r [<!ENTITY lol \"lol\"><!ENTITY lol9 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>",
    "<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>",
    "<!DOCTYPE r SYSTEM \"http://127.0.0.1:1/x.dtd\">",
];

/// Where rest-xml bodies go: Route 53's and S3's operations that read one.
const REST_TARGETS: &[(&str, &str, &str)] = &[
    ("POST", "/2013-04-01/hostedzone", ""),
    ("POST", "/2013-04-01/hostedzone/Z1D633PJN98FT9/rrset/", ""),
    ("POST", "/2013-04-01/tags/hostedzone/Z1", ""),
    ("POST", "/2013-04-01/healthcheck", ""),
    ("POST", "/2013-04-01/hostedzone/Z1/associatevpc", ""),
    ("PUT", "/bucket", ""),
    ("PUT", "/bucket", "tagging"),
    ("POST", "/bucket", "delete"),
    ("PUT", "/bucket/a/b.txt", ""),
    ("PUT", "/bucket/key", "tagging"),
    ("PUT", "/bucket", "lifecycle"),
    ("GET", "/2013-04-01/hostedzone", "maxitems=%FF&marker="),
    ("DELETE", "/2013-04-01/hostedzone/%", ""),
];

/// A document following the operation's input shape by `choices`, with hostile scalars.
fn guided_xml(
    model: &Model,
    shape: ShapeId,
    name: &str,
    choices: &[u16],
    texts: &[String],
) -> String {
    fn go(
        model: &Model,
        shape: ShapeId,
        name: &str,
        it: &mut std::slice::Iter<'_, u16>,
        texts: &[String],
        depth: usize,
        out: &mut String,
    ) {
        let c = it.next().copied().unwrap_or(0) as usize;
        let s = model.shape(shape);
        out.push_str(&format!("<{name}>"));
        if depth < 12 {
            match &s.kind {
                Kind::Structure { members } => {
                    let body: Vec<_> = members.iter().filter(|m| m.location.is_none()).collect();
                    for _ in 0..(c % 4) {
                        let Some(&k) = it.next() else { break };
                        if body.is_empty() {
                            break;
                        }
                        let m = body[k as usize % body.len()];
                        let n = m.location_name.as_deref().unwrap_or(&m.name);
                        go(model, m.shape, n, it, texts, depth + 1, out);
                    }
                }
                Kind::List { member } => {
                    let n = member.location_name.as_deref().unwrap_or("member");
                    for _ in 0..(c % 4) {
                        go(model, member.shape, n, it, texts, depth + 1, out);
                    }
                }
                _ => {
                    if !texts.is_empty() {
                        out.push_str(&texts[c % texts.len()]);
                    }
                }
            }
        }
        out.push_str(&format!("</{name}>"));
    }
    let mut out = String::new();
    go(model, shape, name, &mut choices.iter(), texts, 0, &mut out);
    out
}

fn rest_xml_request() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(REST_TARGETS),
        prop::sample::select(PROLOGS),
        prop_oneof![
            xml_tree().prop_map(|t| {
                let mut s = String::new();
                write_xml(&t, &mut s);
                Guided::Doc(s)
            }),
            (
                prop::collection::vec(any::<u16>(), 0..64),
                prop::collection::vec(
                    prop_oneof![nasty().prop_map(|s| s.replace('<', "&lt;")), hostile_text()],
                    1..6
                )
            )
                .prop_map(|(c, t)| Guided::Plan(c, t)),
        ],
        prop_oneof![8 => 0usize..4, 1 => 60usize..70, 1 => 0usize..100_000],
        (any::<u8>(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..16)),
        prop_oneof![1 => Just(0u8), 4 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(|((method, path, query), prolog, doc, wrap, (mutation, at, junk), auth)| {
            let doc = match doc {
                Guided::Doc(d) => d,
                Guided::Plan(choices, texts) => {
                    let model = service(if path.starts_with("/2013") { "route53" } else { "s3" })
                        .unwrap()
                        .model();
                    let q: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                        .into_owned()
                        .collect();
                    match kumori_protocol::rest::match_operation(model, method, path, &q)
                        .and_then(|m| m.operation.input.map(|i| (m.operation, i)))
                    {
                        Some((op, input)) => {
                            let root = model.shape(input);
                            let name = root
                                .location_name
                                .clone()
                                .unwrap_or_else(|| format!("{}Request", op.name));
                            guided_xml(model, input, &name, &choices, &texts)
                        }
                        None => "<a/>".into(),
                    }
                }
            };
            let mut body = String::from(prolog);
            body.push_str(&"<a>".repeat(wrap));
            body.push_str(&doc);
            body.push_str(&"</a>".repeat(wrap));
            let mut body = body.into_bytes();
            match mutation % 8 {
                0 => body.truncate(at as usize % (body.len() + 1)),
                1 => {
                    let at = at as usize % (body.len() + 1);
                    body.splice(at..at, junk);
                }
                _ => {}
            }
            let mut req = Req::new(method, path, query).body(body);
            if auth > 0 {
                // Mostly signed for the service the path is for; sometimes for the other.
                let route53 = path.starts_with("/2013") == (auth == 1);
                let svc = if route53 { "route53" } else { "s3" };
                req = req.header(
                    "authorization",
                    format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/{svc}/aws4_request, SignedHeaders=host, Signature=00"),
                );
            }
            req.header("content-type", "application/xml")
        })
}

/// A generated document: free-form, or a plan to follow an operation's input shape.
#[derive(Clone, Debug)]
enum Guided {
    Doc(String),
    Plan(Vec<u16>, Vec<String>),
}

// ---- JSON --------------------------------------------------------------------------------

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        hostile_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(("[A-Za-z]{0,8}", inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// No vendored service speaks JSON yet, so these stop at routing today; they are here so that
/// the first JSON service arrives already fuzzed.
fn json_request() -> impl Strategy<Value = Req> {
    (
        prop_oneof![
            prop::sample::select(&[
                "AmazonEC2.DescribeInstances",
                "Route53_20130401.CreateHostedZone",
                "DynamoDB_20120810.GetItem",
                "AWSSecurityTokenServiceV20110615.GetCallerIdentity",
                ".",
                "",
                "a.b.c.d",
            ][..])
            .prop_map(str::to_string),
            "[ -~]{0,32}",
        ],
        prop_oneof![
            json_value().prop_map(|v| v.to_string().into_bytes()),
            (0usize..100_000, prop::sample::select(&["[", "{\"a\":", "[{\"b\":["][..]), any::<bool>())
                .prop_map(|(n, open, close)| {
                    let mut s = open.repeat(n);
                    if close {
                        s.push('1');
                        s.push_str(&"]".repeat(n));
                    }
                    s.into_bytes()
                }),
            prop::collection::vec(any::<u8>(), 0..256),
        ],
        prop::sample::select(&["", "ec2", "sts", "dynamodb", "logs", "route53"][..]),
    )
        .prop_map(|(target, body, signing)| {
            let mut req = Req::new("POST", "/", "")
                .header("x-amz-target", target)
                .header("content-type", "application/x-amz-json-1.1")
                .body(body);
            if !signing.is_empty() {
                req = req.header(
                    "authorization",
                    format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/{signing}/aws4_request, SignedHeaders=host, Signature=00"),
                );
            }
            req
        })
}

// ---- SigV4 -------------------------------------------------------------------------------

fn amz_date() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "20260101T000000Z",
                "20240230T256199Z",
                "99999999T999999Z",
                "00000101T000000Z",
                "20260101T000000",
                "2026-01-01T00:00:00Z",
                "",
                "2026010",
                "é2026010T000000Z",
                "20260101T000000Z\u{0}",
            ][..]
        )
        .prop_map(str::to_string),
        "[0-9]{8}T[0-9]{6}Z",
        "[0-9TZ]{0,20}",
        any::<String>(),
    ]
}

fn credential() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::sample::select(&["AKIDEXAMPLE", "", "ASIA/", "AKIA%2F", "é"][..]),
            amz_date().prop_map(|d| d.chars().take(8).collect::<String>()),
            prop::sample::select(&["us-east-1", "", "..", "é", "us-east-1/extra"][..]),
            prop::sample::select(&["ec2", "iam", "sts", "s3", "route53", "", "nope"][..]),
            prop::sample::select(&["aws4_request", "aws4_request/", "", "AWS4_REQUEST"][..]),
        )
            .prop_map(|(k, d, r, s, t)| format!("{k}/{d}/{r}/{s}/{t}")),
        "[ -~]{0,64}",
    ]
}

fn signature_hex() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}",
        "[0-9a-f]{0,70}",
        "[ -~]{0,16}",
        any::<String>()
    ]
}

fn signed_headers() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(
            prop::sample::select(
                &[
                    "host",
                    "x-amz-date",
                    "content-type",
                    "Host",
                    "",
                    " ",
                    "é",
                    "authorization"
                ][..]
            ),
            0..5
        )
        .prop_map(|h| h.join(";")),
        "[ -~]{0,32}",
    ]
}

fn authorization() -> impl Strategy<Value = String> {
    (
        prop::sample::select(
            &[
                "AWS4-HMAC-SHA256 ",
                "AWS4-HMAC-SHA256",
                "AWS ",
                "",
                "AWS4-HMAC-SHA256,",
            ][..],
        ),
        prop::collection::vec(
            prop_oneof![
                credential().prop_map(|c| format!("Credential={c}")),
                signed_headers().prop_map(|h| format!("SignedHeaders={h}")),
                signature_hex().prop_map(|s| format!("Signature={s}")),
                "[ -~]{0,16}",
            ],
            0..5,
        ),
        prop::sample::select(&[",", ", ", " ,", ",,"][..]),
    )
        .prop_map(|(prefix, parts, sep)| format!("{prefix}{}", parts.join(sep)))
}

fn expires() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "-1",
                "0",
                "1",
                "900",
                "604800",
                "604801",
                "9223372036854775807",
                "9223372036854775808",
                "-9223372036854775808",
                "1e3",
                "",
                " 60",
                "+60",
            ][..]
        )
        .prop_map(str::to_string),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

fn sigv4_request() -> impl Strategy<Value = (Req, i64)> {
    (
        any::<bool>(),
        authorization(),
        (amz_date(), prop::option::of("[ -~]{0,40}")),
        (
            credential(),
            amz_date(),
            expires(),
            signed_headers(),
            signature_hex(),
        ),
        prop::collection::vec((0u8..5, any::<bool>()), 0..5),
        ("[ -~]{0,24}", "(/[ -~&&[^/?#]]{0,6}){0,4}/?"),
        // Server clocks anywhere in the years time can represent.
        -377_705_116_800i64..253_402_300_799,
    )
        .prop_map(
            |(
                presigned,
                auth,
                (date, http_date),
                (cred, pdate, exp, sh, sig),
                drop,
                (q, path),
                now,
            )| {
                let method = if presigned { "GET" } else { "POST" };
                let mut req = Req::new(method, &path, "").header("host", "127.0.0.1:4566");
                if presigned {
                    let mut params = vec![
                        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
                        ("X-Amz-Credential", cred),
                        ("X-Amz-Date", pdate),
                        ("X-Amz-Expires", exp),
                        ("X-Amz-SignedHeaders", sh),
                        ("X-Amz-Signature", sig),
                    ];
                    // Some parameters missing, some twice.
                    for (i, twice) in drop {
                        let i = i as usize % params.len();
                        if twice {
                            params.push(params[i].clone());
                        } else {
                            params.remove(i);
                        }
                    }
                    let mut query: Vec<String> = params
                        .iter()
                        .map(|(k, v)| format!("{k}={}", enc(v)))
                        .collect();
                    query.push(q);
                    req.query = query.join("&");
                } else {
                    req = req.header("authorization", auth).header("x-amz-date", date);
                    if let Some(d) = http_date {
                        req = req.header("date", d);
                    }
                    req.query = q;
                    req.body = b"Action=GetCallerIdentity&Version=2011-06-15".to_vec();
                }
                (req, now)
            },
        )
}

// ---- the properties ----------------------------------------------------------------------

proptest! {
    #![proptest_config(config(1))]

    #[test]
    fn query_forms_never_crash_and_refuse_with_4xx(req in query_request()) {
        prop_assert_eq!(check(req), Ok(()));
    }

    #[test]
    fn rest_xml_bodies_never_crash_and_refuse_with_4xx(req in rest_xml_request()) {
        prop_assert_eq!(check(req), Ok(()));
    }

    #[test]
    fn json_bodies_never_crash_and_refuse_with_4xx(req in json_request()) {
        prop_assert_eq!(check(req), Ok(()));
    }

    #[test]
    fn sigv4_parsing_never_crashes((req, now) in sigv4_request()) {
        let now = OffsetDateTime::from_unix_timestamp(now).unwrap();
        prop_assert_eq!(check_at(req, now), Ok(()));
    }
}

proptest! {
    #![proptest_config(config(4))]

    #[test]
    fn deep_parameter_names_are_refused_with_4xx(req in deep_key_request()) {
        prop_assert_eq!(check(req), Ok(()));
    }
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn many_parameters_never_crash(req in many_params_request()) {
        prop_assert_eq!(check(req), Ok(()));
    }
}

// ---- regressions -------------------------------------------------------------------------

/// Issue 13: this request overflowed the stack while the trie was dropped, before
/// authentication, and took the process down.
#[test]
fn a_query_key_nested_15000_levels_is_a_4xx() {
    let key = vec!["A"; 15_000].join(".");
    assert_eq!(key.len(), 29_999);
    let form = format!("Action=DescribeInstances&Version=2016-11-15&{key}=x");
    let req = Req::new("POST", "/", "").form().body(form.clone());
    assert_eq!(check(req), Ok(()));
    // The same through the query string, and for an awsQuery service.
    assert_eq!(check(Req::new("GET", "/", &form)), Ok(()));
    let iam = format!("Action=CreateUser&Version=2010-05-08&{key}=x");
    assert_eq!(check(Req::new("POST", "/", "").form().body(iam)), Ok(()));
    let refused = decode_error(Req::new("POST", "/", "").form().body(form));
    assert_eq!(refused.0, 404, "{refused:?}");
    assert_eq!(refused.1, "MalformedQueryString");
}

/// Issue 13: the other one: a 350 KB rest-xml body nested 50,000 elements deep.
#[test]
fn an_xml_body_nested_50000_elements_is_a_4xx() {
    let body = format!("{}{}", "<a>".repeat(50_000), "</a>".repeat(50_000));
    assert_eq!(body.len(), 350_000);
    let req = Req::new("POST", "/2013-04-01/hostedzone", "").body(body.clone());
    assert_eq!(check(req), Ok(()));
    let refused = decode_error(Req::new("POST", "/2013-04-01/hostedzone", "").body(body));
    assert_eq!(refused.0, 400, "{refused:?}");
    assert_eq!(refused.1, "MalformedXML");
    // Never closed, and S3's side of rest-xml.
    let open = "<a>".repeat(50_000);
    assert_eq!(
        check(Req::new("POST", "/2013-04-01/hostedzone", "").body(open.clone())),
        Ok(())
    );
    assert_eq!(
        check(Req::new("PUT", "/bucket", "tagging").body(open)),
        Ok(())
    );
}

/// The status and code `req` is refused with (on a normal stack: the checks above already
/// ran it on a small one).
fn decode_error(req: Req) -> (u16, String, String) {
    let mut headers = HeaderMap::new();
    for (k, v) in &req.headers {
        headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v).unwrap(),
        );
    }
    let r = HttpRequest {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &headers,
        body: &req.body,
    };
    match decode(&r, "us-east-1") {
        Ok(call) => panic!("decoded as {}", call.operation.name),
        Err(f) => (f.error.status, f.error.code, f.error.message),
    }
}

// ---- the corpus --------------------------------------------------------------------------

/// Reads a corpus file: `#` comment lines, then a request line (`METHOD /path?query`),
/// header lines, an empty line and the body (raw bytes, to the end of the file).
fn corpus(bytes: &[u8]) -> Req {
    let mut rest = bytes;
    let mut line = || {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let l = String::from_utf8_lossy(&rest[..end])
            .trim_end_matches('\r')
            .to_string();
        rest = &rest[(end + 1).min(rest.len())..];
        l
    };
    let mut first = line();
    while first.starts_with('#') {
        first = line();
    }
    let (method, target) = first.split_once(' ').expect("a request line");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Req::new(method, path, query);
    loop {
        let l = line();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').expect("a header line");
        req = req.header(k.trim(), v.trim());
    }
    req.body(rest.to_vec())
}

#[test]
fn the_corpus_decodes_to_4xx_or_a_call() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fuzz-corpus")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus is in {}", dir.display());
    // The corpus's signed requests are dated 2026-01-01.
    let now = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
    for f in files {
        let req = corpus(&std::fs::read(&f).unwrap());
        assert_eq!(check_at(req, now), Ok(()), "{}", f.display());
    }
}
