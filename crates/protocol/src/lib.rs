//! AWS wire protocols, driven by AWS's own service models.
//!
//! This crate turns an HTTP request into a [`Call`] (service, region, operation and an input
//! value keyed by the model's member names) and turns a handler's output value or an
//! [`AwsError`] back into the HTTP response that protocol prescribes. It knows nothing of VPCs:
//! every element name, list wrapper and validation rule comes from `models/`.

pub mod error;
pub mod json;
pub mod model;
pub mod query;
pub mod rest;
pub mod routing;
pub mod sigv4;
pub mod time;
pub mod xml;
pub mod xml_typed;

pub use error::AwsError;
pub use model::{Model, Operation, Protocol};

use http::HeaderMap;
use serde_json::Value;

/// The parts of an HTTP request the protocols look at.
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A response ready to send.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// What a handler answers: a JSON value keyed by the model's member names, or typed data
/// that the protocol writes straight to the wire (no intermediate value: large describes).
pub enum Output {
    Value(Value),
    Typed(Box<dyn TypedOutput>),
}

/// Typed output data; every `Serialize` type whose field names are the model's member names.
pub trait TypedOutput: Send + Sync {
    fn write_xml(
        &self,
        model: &Model,
        shape: model::ShapeId,
        out: &mut String,
    ) -> Result<(), xml_typed::Error>;
    fn to_json(&self) -> serde_json::Result<String>;
}

impl<T: serde::Serialize + Send + Sync> TypedOutput for T {
    fn write_xml(
        &self,
        model: &Model,
        shape: model::ShapeId,
        out: &mut String,
    ) -> Result<(), xml_typed::Error> {
        xml_typed::write_members(model, shape, self, out)
    }
    fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }
}

impl From<Value> for Output {
    fn from(v: Value) -> Self {
        Output::Value(v)
    }
}

impl Output {
    /// Writes the members of structure `shape`, with no element of its own.
    pub fn write_xml_members(
        &self,
        model: &Model,
        shape: model::ShapeId,
        out: &mut String,
    ) -> Result<(), AwsError> {
        match self {
            Output::Value(v) => {
                xml::write_members(model, shape, v, out);
                Ok(())
            }
            Output::Typed(t) => t
                .write_xml(model, shape, out)
                .map_err(|e| AwsError::internal(format!("kumori could not write its answer: {e}"))),
        }
    }

    fn to_json(&self) -> Result<String, AwsError> {
        match self {
            Output::Value(v) => Ok(v.to_string()),
            Output::Typed(t) => t
                .to_json()
                .map_err(|e| AwsError::internal(format!("kumori could not write its answer: {e}"))),
        }
    }
}

/// A decoded AWS API call.
#[derive(Debug)]
pub struct Call {
    pub model: &'static Model,
    pub operation: &'static Operation,
    pub input: Value,
    pub region: String,
    /// The access key of the signature, when the request is signed.
    pub access_key: Option<String>,
}

impl Call {
    pub fn service(&self) -> &'static str {
        self.model.service
    }
}

/// A request that could not be decoded, with the model whose envelope the error goes in.
#[derive(Debug)]
pub struct DecodeFailure {
    pub model: Option<&'static Model>,
    pub error: AwsError,
}

fn fail(model: Option<&'static Model>, error: AwsError) -> DecodeFailure {
    DecodeFailure { model, error }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The model a request is for, judged from its signature, headers and path alone (not its
/// body): for answering in the right envelope when the body itself is refused.
pub fn model_of(req: &HttpRequest<'_>) -> Option<&'static Model> {
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .collect();
    let version = query
        .iter()
        .find(|(k, _)| k == "Version")
        .map(|(_, v)| v.as_str());
    let def = match routing::credential_scope(req.headers, &query) {
        Some(s) => routing::service_for_signing_name(&s.service, version)?,
        None => routing::service_for_unsigned(req.headers, req.path, version)?,
    };
    Some(def.model())
}

/// Decodes `req` into a call of one operation of one vendored service.
pub fn decode(req: &HttpRequest<'_>, default_region: &str) -> Result<Call, DecodeFailure> {
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .collect();
    let form: Vec<(String, String)> = if req.method == "POST" && is_form(req.headers) {
        form_urlencoded::parse(req.body).into_owned().collect()
    } else {
        Vec::new()
    };
    let version = form
        .iter()
        .chain(&query)
        .find(|(k, _)| k == "Version")
        .map(|(_, v)| v.as_str());
    let scope = routing::credential_scope(req.headers, &query);
    let def = match &scope {
        Some(s) => routing::service_for_signing_name(&s.service, version).ok_or_else(|| {
            fail(
                None,
                AwsError::new(
                    "UnknownService",
                    format!("kumori does not serve the AWS service signed as '{}'.", s.service),
                ),
            )
        })?,
        None => routing::service_for_unsigned(req.headers, req.path, version).ok_or_else(|| {
            fail(
                None,
                AwsError::new(
                    "UnknownService",
                    "kumori could not tell which AWS service this request is for: sign it with SigV4 \
                     or send an Action and Version.",
                ),
            )
        })?,
    };
    let model = def.model();
    let region = scope
        .as_ref()
        .map(|s| s.region.clone())
        .or_else(|| routing::region_from_host(req.headers))
        .unwrap_or_else(|| default_region.to_string());
    let access_key = scope.map(|s| s.access_key);

    let (operation, input) = match model.protocol {
        Protocol::Ec2 | Protocol::Query => {
            let params = query::Node::from_pairs(
                form.iter()
                    .chain(&query)
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .map_err(|e| fail(Some(model), e))?;
            let action = params.get("Action").ok_or_else(|| {
                fail(
                    Some(model),
                    AwsError::new(
                        "MissingAction",
                        "The request must contain the parameter Action",
                    ),
                )
            })?;
            let operation = model.operation(action).ok_or_else(|| {
                fail(Some(model), AwsError::invalid_action(model.service, action))
            })?;
            let input = match operation.input {
                Some(shape) => {
                    query::parse_input(model, shape, &params).map_err(|e| fail(Some(model), e))?
                }
                None => Value::Object(Default::default()),
            };
            (operation, input)
        }
        Protocol::RestXml => {
            let m =
                rest::match_operation(model, req.method, req.path, &query).ok_or_else(|| {
                    fail(
                        Some(model),
                        AwsError::new(
                            "InvalidAction",
                            format!(
                                "No {} operation matches {} {}.",
                                model.service, req.method, req.path
                            ),
                        ),
                    )
                })?;
            let mut input = rest::bound_members(model, &m, &query, req.headers);
            if !req.body.is_empty()
                && let Some(shape) = m.operation.input
            {
                read_xml_body(model, shape, req.body, &mut input)
                    .map_err(|e| fail(Some(model), e))?;
            }
            (m.operation, input)
        }
        Protocol::Json => {
            let target = req
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let name = target.rsplit('.').next().unwrap_or_default();
            let operation = model
                .operation(name)
                .ok_or_else(|| fail(Some(model), AwsError::invalid_action(model.service, name)))?;
            let input = if req.body.is_empty() {
                Value::Object(Default::default())
            } else {
                serde_json::from_slice(req.body).map_err(|e| {
                    fail(
                        Some(model),
                        AwsError::new("SerializationException", e.to_string()),
                    )
                })?
            };
            if let Some(shape) = operation.input {
                json::check_input(model, shape, &input).map_err(|e| fail(Some(model), e))?;
            }
            (operation, input)
        }
    };
    Ok(Call {
        model,
        operation,
        input,
        region,
        access_key,
    })
}

/// Reads a rest-xml body into `input`: the payload member when the input shape names one (a
/// structure as XML, a blob or string as the raw body), otherwise the unbound members.
fn read_xml_body(
    model: &Model,
    shape: model::ShapeId,
    body: &[u8],
    input: &mut Value,
) -> Result<(), AwsError> {
    let malformed = |e: String| {
        AwsError::new(
            "MalformedXML",
            format!("The XML you provided was not well-formed: {e}"),
        )
    };
    let s = model.shape(shape);
    let payload = s.payload.as_ref().and_then(|p| match &s.kind {
        model::Kind::Structure { members } => members.iter().find(|m| &m.name == p),
        _ => None,
    });
    match payload {
        Some(member) => {
            let v = match model.shape(member.shape).kind {
                model::Kind::Structure { .. } => {
                    let root = xml::parse_document(body).map_err(malformed)?;
                    xml::read_members(model, member.shape, &root).map_err(malformed)?
                }
                // Raw payloads (S3 object bodies) arrive as text until S3 streams them.
                _ => Value::String(String::from_utf8_lossy(body).into_owned()),
            };
            input[member.name.as_str()] = v;
        }
        None => {
            let root = xml::parse_document(body).map_err(malformed)?;
            if let Value::Object(read) =
                xml::read_members(model, shape, &root).map_err(malformed)?
            {
                for (k, v) in read {
                    input[k.as_str()] = v;
                }
            }
        }
    }
    Ok(())
}

/// The success response of `call` carrying `output` (or the error response, should kumori's
/// own output not fit its model).
pub fn encode_output(call: &Call, output: &Output, request_id: &str) -> HttpResponse {
    match try_encode_output(call, output, request_id) {
        Ok(resp) => resp,
        Err(e) => encode_error(Some(call.model), &e, request_id),
    }
}

fn try_encode_output(
    call: &Call,
    output: &Output,
    request_id: &str,
) -> Result<HttpResponse, AwsError> {
    let model = call.model;
    let op = call.operation;
    let (content_type, body) = match model.protocol {
        Protocol::Ec2 | Protocol::Query => (
            "text/xml;charset=UTF-8",
            xml::response_document(
                model,
                &op.name,
                op.output,
                op.result_wrapper.as_deref(),
                output,
                request_id,
            )?,
        ),
        Protocol::RestXml => {
            let body = match op.output {
                Some(shape) => {
                    let s = model.shape(shape);
                    let mut body = format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{} xmlns=\"{}\">",
                        s.name, model.xml_namespace
                    );
                    output.write_xml_members(model, shape, &mut body)?;
                    body.push_str(&format!("</{}>", s.name));
                    body
                }
                None => String::new(),
            };
            ("application/xml", body)
        }
        Protocol::Json => {
            // Only what the output shape has: stored records' internal fields stay inside.
            let body = match op.output {
                Some(shape) => {
                    let v = match output {
                        Output::Value(v) => json::shaped(model, shape, v),
                        Output::Typed(_) => {
                            let text = output.to_json()?;
                            let v: Value = serde_json::from_str(&text).map_err(|e| {
                                AwsError::internal(format!(
                                    "kumori could not write its answer: {e}"
                                ))
                            })?;
                            json::shaped(model, shape, &v)
                        }
                    };
                    v.to_string()
                }
                None => "{}".to_string(),
            };
            ("application/x-amz-json-1.1", body)
        }
    };
    Ok(HttpResponse {
        status: op.http_status,
        content_type,
        headers: request_id_headers(model, request_id),
        body,
    })
}

/// The error response for `err`, in the envelope of `model`'s protocol (EC2's when unknown).
pub fn encode_error(model: Option<&Model>, err: &AwsError, request_id: &str) -> HttpResponse {
    // An error the model declares travels with the model's status, whatever the handler
    // set: handlers name the code, the model knows its status.
    let modelled;
    let err = match model
        .and_then(|m| m.error(&err.code))
        .and_then(|e| e.http_status.map(|s| (s, e.sender_fault)))
    {
        Some((status, sender_fault)) if status != err.status => {
            modelled = AwsError {
                status,
                sender_fault,
                ..err.clone()
            };
            &modelled
        }
        _ => err,
    };
    let (content_type, body) = match model {
        Some(m) if m.service == "s3" => ("application/xml", error::render_s3(err, request_id)),
        Some(m) => error::render(err, m.protocol, &m.xml_namespace, request_id),
        None => error::render(err, Protocol::Ec2, "", request_id),
    };
    HttpResponse {
        status: err.status,
        content_type,
        headers: model
            .map(|m| request_id_headers(m, request_id))
            .unwrap_or_else(|| vec![("x-amzn-RequestId", request_id.to_string())]),
        body,
    }
}

fn request_id_headers(model: &Model, request_id: &str) -> Vec<(&'static str, String)> {
    if model.service == "s3" {
        vec![
            ("x-amz-request-id", request_id.to_string()),
            ("x-amz-id-2", request_id.to_string()),
        ]
    } else {
        vec![("x-amzn-RequestId", request_id.to_string())]
    }
}

/// A fresh request id, in the UUID form AWS uses.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
