//! AWS service models (botocore's `service-2.json`, vendored in `models/`), loaded into an
//! indexed shape graph that the codecs walk.
//!
//! Models are embedded in the binary and parsed lazily, one service at a time, on first use:
//! EC2's model is 1.1 MB, and parsing it before the first request would cost start-up time that
//! most sessions (a health check, one STS call) never need.

use indexmap::IndexMap;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The wire protocol a service model declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// EC2's own query dialect: flattened `Name.N` lists, `<item>` output, `<Response><Errors>`.
    Ec2,
    /// awsQuery: `Name.member.N` lists, `<XResult>` wrappers, `<ErrorResponse>`.
    Query,
    /// REST with XML payloads (Route 53, S3).
    RestXml,
    /// awsJson 1.0/1.1 (`X-Amz-Target`).
    Json,
}

/// Index of a shape inside its model.
pub type ShapeId = usize;

#[derive(Debug)]
pub struct Model {
    /// kumori's name for the service (`ec2`, `iam`, `elbv2`, ...).
    pub service: &'static str,
    pub protocol: Protocol,
    pub api_version: String,
    /// Name the service signs with (SigV4 credential scope).
    pub signing_name: String,
    /// XML namespace of responses, with the trailing slash AWS sends.
    pub xml_namespace: String,
    pub json_version: Option<String>,
    pub target_prefix: Option<String>,
    shapes: Vec<Shape>,
    shape_index: HashMap<String, ShapeId>,
    /// Sorted by name, so that iteration (and rest-xml template ties) is deterministic.
    operations: Vec<Operation>,
    operation_index: HashMap<String, usize>,
    /// Exception shapes by their error code, so an error answer costs one lookup.
    error_index: HashMap<String, ShapeId>,
}

#[derive(Debug)]
pub struct Operation {
    pub name: String,
    pub input: Option<ShapeId>,
    pub output: Option<ShapeId>,
    /// awsQuery wraps the output in `<{resultWrapper}>`.
    pub result_wrapper: Option<String>,
    pub http_method: String,
    pub request_uri: String,
    pub http_status: u16,
}

#[derive(Debug)]
pub struct Shape {
    pub name: String,
    pub kind: Kind,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub enum_values: Option<Vec<String>>,
    pub pattern: Option<String>,
    pub flattened: bool,
    pub timestamp_format: Option<String>,
    /// For exception shapes: the error code, HTTP status and whether the caller is at fault.
    pub error: Option<ErrorTrait>,
    /// For rest-xml: the member that is the whole HTTP payload.
    pub payload: Option<String>,
    pub location_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ErrorTrait {
    pub code: Option<String>,
    pub http_status: Option<u16>,
    pub sender_fault: bool,
}

#[derive(Debug)]
pub enum Kind {
    Structure { members: Vec<Member> },
    List { member: Member },
    Map { key: Member, value: Member },
    String,
    Integer,
    Long,
    Boolean,
    Float,
    Double,
    Timestamp,
    Blob,
}

/// Where a rest-xml/rest-json member travels in the HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Uri,
    Querystring,
    Header,
    Headers,
    StatusCode,
}

#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub shape: ShapeId,
    pub required: bool,
    pub location_name: Option<String>,
    pub query_name: Option<String>,
    pub location: Option<Location>,
    pub flattened: bool,
    pub xml_attribute: bool,
    pub idempotency_token: bool,
}

impl Model {
    pub fn shape(&self, id: ShapeId) -> &Shape {
        &self.shapes[id]
    }

    pub fn shape_id(&self, name: &str) -> Option<ShapeId> {
        self.shape_index.get(name).copied()
    }

    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operation_index.get(name).map(|i| &self.operations[*i])
    }

    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.operations.iter()
    }

    /// The error the model declares under `code` (its HTTP status and fault), if any. EC2's
    /// model declares none; IAM's, STS's, Route 53's and S3's do.
    pub fn error(&self, code: &str) -> Option<&ErrorTrait> {
        let id = *self.error_index.get(code)?;
        self.shape(id).error.as_ref()
    }

    /// Parses a botocore `service-2.json` document.
    pub fn parse(service: &'static str, json: &str) -> Result<Model, String> {
        let raw: RawModel = serde_json::from_str(json).map_err(|e| format!("{service}: {e}"))?;
        let protocol = match raw.metadata.protocol.as_str() {
            "ec2" => Protocol::Ec2,
            "query" => Protocol::Query,
            "rest-xml" => Protocol::RestXml,
            "json" => Protocol::Json,
            other => return Err(format!("{service}: unsupported protocol {other}")),
        };
        let mut names: Vec<&String> = raw.shapes.keys().collect();
        names.sort();
        let shape_index: HashMap<String, ShapeId> = names
            .iter()
            .enumerate()
            .map(|(i, n)| ((*n).clone(), i))
            .collect();
        let resolve = |name: &str| -> Result<ShapeId, String> {
            shape_index
                .get(name)
                .copied()
                .ok_or_else(|| format!("{service}: unknown shape {name}"))
        };
        let member = |name: &str, raw: &RawMember, required: bool| -> Result<Member, String> {
            Ok(Member {
                name: name.to_string(),
                shape: resolve(&raw.shape)?,
                required,
                location_name: raw.location_name.clone(),
                query_name: raw.query_name.clone(),
                location: match raw.location.as_deref() {
                    None => None,
                    Some("uri") => Some(Location::Uri),
                    Some("querystring") => Some(Location::Querystring),
                    Some("header") => Some(Location::Header),
                    Some("headers") => Some(Location::Headers),
                    Some("statusCode") => Some(Location::StatusCode),
                    Some(other) => return Err(format!("{service}: unknown location {other}")),
                },
                flattened: raw.flattened,
                xml_attribute: raw.xml_attribute,
                idempotency_token: raw.idempotency_token,
            })
        };
        let mut shapes = Vec::with_capacity(names.len());
        for name in &names {
            let s = &raw.shapes[*name];
            let kind = match s.kind.as_str() {
                "structure" => {
                    // Model order is the order AWS writes elements in.
                    let mut members = Vec::with_capacity(s.members.len());
                    for (k, m) in &s.members {
                        members.push(member(k, m, s.required.contains(k))?);
                    }
                    Kind::Structure { members }
                }
                "list" => Kind::List {
                    member: member(
                        "member",
                        s.member.as_ref().ok_or("list without member")?,
                        false,
                    )?,
                },
                "map" => Kind::Map {
                    key: member("key", s.key.as_ref().ok_or("map without key")?, false)?,
                    value: member("value", s.value.as_ref().ok_or("map without value")?, false)?,
                },
                "string" => Kind::String,
                "integer" => Kind::Integer,
                "long" => Kind::Long,
                "boolean" => Kind::Boolean,
                "float" => Kind::Float,
                "double" => Kind::Double,
                "timestamp" => Kind::Timestamp,
                "blob" => Kind::Blob,
                other => return Err(format!("{service}: shape {name} has unknown type {other}")),
            };
            shapes.push(Shape {
                name: (*name).clone(),
                kind,
                min: s.min,
                max: s.max,
                enum_values: s.enum_values.clone(),
                pattern: s.pattern.clone(),
                flattened: s.flattened,
                timestamp_format: s.timestamp_format.clone(),
                error: if s.exception {
                    let e = s.error.as_ref();
                    Some(ErrorTrait {
                        code: e.and_then(|e| e.code.clone()),
                        http_status: e.and_then(|e| e.http_status_code),
                        sender_fault: e.map(|e| e.sender_fault).unwrap_or(false),
                    })
                } else {
                    None
                },
                payload: s.payload.clone(),
                location_name: s.location_name.clone(),
            });
        }
        let mut op_names: Vec<&String> = raw.operations.keys().collect();
        op_names.sort();
        let mut operations = Vec::with_capacity(op_names.len());
        for name in op_names {
            let op = &raw.operations[name];
            operations.push(Operation {
                name: name.clone(),
                input: op.input.as_ref().map(|r| resolve(&r.shape)).transpose()?,
                output: op.output.as_ref().map(|r| resolve(&r.shape)).transpose()?,
                result_wrapper: op.output.as_ref().and_then(|r| r.result_wrapper.clone()),
                http_method: op.http.method.clone(),
                request_uri: op.http.request_uri.clone(),
                http_status: op.http.response_code.unwrap_or(200),
            });
        }
        let operation_index = operations
            .iter()
            .enumerate()
            .map(|(i, o)| (o.name.clone(), i))
            .collect();
        let md = raw.metadata;
        let mut xml_namespace = md.xml_namespace.unwrap_or_default();
        if !xml_namespace.is_empty() && !xml_namespace.ends_with('/') {
            xml_namespace.push('/');
        }
        let error_index = shapes
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let e = s.error.as_ref()?;
                let code = e.code.clone().unwrap_or_else(|| s.name.clone());
                Some((code, i))
            })
            .collect();
        Ok(Model {
            service,
            protocol,
            signing_name: md
                .signing_name
                .unwrap_or_else(|| md.endpoint_prefix.clone()),
            api_version: md.api_version,
            xml_namespace,
            json_version: md.json_version,
            target_prefix: md.target_prefix,
            shapes,
            shape_index,
            operations,
            operation_index,
            error_index,
        })
    }
}

/// A vendored service: kumori's name for it and its embedded model text.
pub struct ServiceDef {
    pub name: &'static str,
    /// The SigV4 signing name, known without parsing the model (checked by a test).
    pub signing_name: &'static str,
    pub api_version: &'static str,
    json: &'static str,
    cell: OnceLock<Model>,
}

impl ServiceDef {
    /// The parsed model; parsed on first call, shared afterwards.
    pub fn model(&self) -> &Model {
        self.cell
            .get_or_init(|| Model::parse(self.name, self.json).expect("vendored model must parse"))
    }
}

macro_rules! services {
    ($(($name:literal, $signing:literal, $version:literal)),* $(,)?) => {
        /// Every vendored service, in the order kumori lists them.
        pub static SERVICES: [ServiceDef; 9] = [
            $(ServiceDef {
                name: $name,
                signing_name: $signing,
                api_version: $version,
                json: include_str!(concat!("../../../models/", $name, ".json")),
                cell: OnceLock::new(),
            }),*
        ];
    };
}
services!(
    ("ec2", "ec2", "2016-11-15"),
    ("iam", "iam", "2010-05-08"),
    ("sts", "sts", "2011-06-15"),
    ("elbv2", "elasticloadbalancing", "2015-12-01"),
    ("autoscaling", "autoscaling", "2011-01-01"),
    ("rds", "rds", "2014-10-31"),
    ("route53", "route53", "2013-04-01"),
    ("s3", "s3", "2006-03-01"),
    ("secretsmanager", "secretsmanager", "2017-10-17"),
);

/// The vendored service named `name` (kumori's name: `ec2`, `elbv2`, ...).
pub fn service(name: &str) -> Option<&'static ServiceDef> {
    SERVICES.iter().find(|s| s.name == name)
}

// ---- raw botocore JSON -------------------------------------------------------------------

#[derive(Deserialize)]
struct RawModel {
    metadata: RawMetadata,
    operations: HashMap<String, RawOperation>,
    shapes: HashMap<String, RawShape>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetadata {
    protocol: String,
    api_version: String,
    endpoint_prefix: String,
    signing_name: Option<String>,
    xml_namespace: Option<String>,
    json_version: Option<String>,
    target_prefix: Option<String>,
}

#[derive(Deserialize)]
struct RawOperation {
    http: RawHttp,
    input: Option<RawRef>,
    output: Option<RawRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHttp {
    method: String,
    request_uri: String,
    response_code: Option<u16>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRef {
    shape: String,
    result_wrapper: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    members: IndexMap<String, RawMember>,
    #[serde(default)]
    required: Vec<String>,
    member: Option<RawMember>,
    key: Option<RawMember>,
    value: Option<RawMember>,
    min: Option<f64>,
    max: Option<f64>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
    pattern: Option<String>,
    #[serde(default)]
    flattened: bool,
    timestamp_format: Option<String>,
    #[serde(default)]
    exception: bool,
    error: Option<RawError>,
    payload: Option<String>,
    location_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMember {
    shape: String,
    location_name: Option<String>,
    query_name: Option<String>,
    location: Option<String>,
    #[serde(default)]
    flattened: bool,
    #[serde(default)]
    xml_attribute: bool,
    #[serde(default)]
    idempotency_token: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawError {
    code: Option<String>,
    http_status_code: Option<u16>,
    #[serde(default)]
    sender_fault: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendored_model_parses() {
        for def in &SERVICES {
            let m = def.model();
            assert!(m.operations().count() > 5, "{} has operations", def.name);
            assert_eq!(m.signing_name, def.signing_name);
            assert_eq!(m.api_version, def.api_version);
        }
        let ec2 = service("ec2").unwrap().model();
        assert_eq!(ec2.protocol, Protocol::Ec2);
        assert_eq!(
            ec2.xml_namespace,
            "http://ec2.amazonaws.com/doc/2016-11-15/"
        );
        let op = ec2.operation("DescribeVpcs").unwrap();
        let input = ec2.shape(op.input.unwrap());
        let Kind::Structure { members } = &input.kind else {
            panic!("structure")
        };
        let filters = members.iter().find(|m| m.name == "Filters").unwrap();
        assert_eq!(filters.location_name.as_deref(), Some("Filter"));
        let iam = service("iam").unwrap().model();
        assert_eq!(
            iam.operation("GetUser").unwrap().result_wrapper.as_deref(),
            Some("GetUserResult")
        );
        let nse = iam.shape(iam.shape_id("NoSuchEntityException").unwrap());
        assert_eq!(nse.error.as_ref().unwrap().http_status, Some(404));
        assert_eq!(iam.error("NoSuchEntity").unwrap().http_status, Some(404));
        assert_eq!(
            iam.error("EntityAlreadyExists").unwrap().http_status,
            Some(409)
        );
        assert!(ec2.error("InvalidVpcID.NotFound").is_none());
    }
}
