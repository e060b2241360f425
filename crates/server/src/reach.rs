//! `POST /_kumori/reach` and `POST /_kumori/audit`: what `kumori reach` and `kumori audit`
//! print, answered by the running server from its own store, whatever the backend, so the
//! commands need neither its files nor its machine (their client half is `ask.rs`).
//!
//! A question is a small JSON object — `{"from", "to", "port", "protocol", "region"}` for
//! reach (only `from` and `to` required), `{"region"}` for audit — and the answer is JSON too:
//! the text the command prints and its verdict (`reachable`; `clean` and the `findings`).
//! A region left out is the server's default region. Errors are JSON `{"code", "error"}`
//! with the HTTP status AWS would give.
//!
//! Guarded as kumori's other endpoints are (`own.rs`): a loopback or `--allowed-host` Host,
//! no page of another origin. With authentication off any such caller may ask, as for
//! `/_kumori/health`; under `verify` the request must be signed with SigV4 by a key IAM knows;
//! under `enforce` the signer's policies must also allow [`READS`], the EC2 reads that
//! between them show what an answer is built from.

use crate::{App, Mode, json_response, own, read_body};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use kumori_net::reach::model::Protocol;
use kumori_protocol::{AwsError, Call, HttpRequest};
use kumori_services::{Caller, Ctx};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub const REACH_PATH: &str = "/_kumori/reach";
pub const AUDIT_PATH: &str = "/_kumori/audit";

/// What a caller must be allowed under `--auth enforce` to ask either question (in the
/// region asked about): the reads that show instances, interfaces, security groups, network
/// ACLs and route tables, which is what a reachability answer or an audit reveals.
pub const READS: &[&str] = &[
    "DescribeInstances",
    "DescribeNetworkInterfaces",
    "DescribeSecurityGroups",
    "DescribeNetworkAcls",
    "DescribeRouteTables",
];

type Peer = Option<axum::Extension<ConnectInfo<SocketAddr>>>;

/// An admitted question: its JSON object, the region it is about and who asks.
struct Question {
    body: serde_json::Map<String, Value>,
    region: String,
    caller: Option<Caller>,
}

/// An error answered as kumori's endpoints answer one: JSON, with AWS's code and status.
fn error(e: &AwsError) -> Response {
    json_response(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        json!({ "code": e.code, "error": e.message }),
    )
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new("InvalidParameterValue", message)
}

/// The guards, then who asks (before what is asked, as AWS checks), then the question.
#[allow(clippy::result_large_err)]
async fn admit(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    body: Body,
    members: &[&str],
) -> Result<Question, Response> {
    own::check_request(&app.config, headers)?;
    let body = read_body(body).await.map_err(|e| error(&e))?;
    let caller = if app.config.auth == Mode::Off {
        None
    } else {
        let req = HttpRequest {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query().unwrap_or(""),
            headers,
            body: &body,
        };
        Some(own::signed_caller(app, &req).await?)
    };
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(error(&invalid("The question must be a JSON object."))),
            Err(e) => {
                return Err(error(&AwsError::new(
                    "MalformedInput",
                    format!("The question is not JSON: {e}."),
                )));
            }
        }
    };
    if let Some(unknown) = body.keys().find(|k| !members.contains(&k.as_str())) {
        return Err(error(&invalid(format!(
            "'{unknown}' is not a member of this question (members: {}).",
            members.join(", ")
        ))));
    }
    let region = match body.get("region") {
        None | Some(Value::Null) => app.config.default_region.clone(),
        Some(Value::String(r))
            if !r.is_empty()
                && r.len() <= 64
                && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            r.clone()
        }
        Some(other) => {
            return Err(error(&invalid(format!(
                "The region {other} is not a region name."
            ))));
        }
    };
    if app.config.auth == Mode::Enforce
        && let Some(caller) = &caller
    {
        authorize(app, caller, &region, peer).await?;
    }
    Ok(Question {
        body,
        region,
        caller,
    })
}

/// Under `--auth enforce`: the caller's policies must allow each of [`READS`] in `region`,
/// judged as those calls would be; the first denial is the answer (EC2's
/// `UnauthorizedOperation`, 403).
#[allow(clippy::result_large_err)]
async fn authorize(
    app: &App,
    caller: &Caller,
    region: &str,
    peer: Option<IpAddr>,
) -> Result<(), Response> {
    let ctx = Ctx {
        region,
        caller: Some(caller),
        ..app.ctx()
    };
    let identity = kumori_services::auth::identify(&ctx, &caller.access_key)
        .await
        .map_err(|e| error(&e.0))?;
    let Some(mut identity) = identity else {
        return Err(own::refusal(
            StatusCode::FORBIDDEN,
            "The request's access key is unknown.",
        ));
    };
    // The caller as the signature was checked (`verified`).
    identity.caller = caller.clone();
    let ec2 = kumori_protocol::model::service("ec2")
        .expect("EC2's model is vendored")
        .model();
    for name in READS {
        let call = Call {
            model: ec2,
            operation: ec2.operation(name).expect("EC2's model has its describes"),
            input: json!({}),
            region: region.to_string(),
            access_key: Some(caller.access_key.clone()),
        };
        kumori_services::authz::authorize(&ctx, &identity, &call, peer)
            .await
            .map_err(|e| error(&e))?;
    }
    Ok(())
}

/// `POST /_kumori/reach`: whether `from` reaches `to` (on `port`, or on any port), and the
/// text `kumori reach` prints: the path hop by hop or what blocks it, then every port's
/// verdict.
pub(crate) async fn reach(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
    body: Body,
) -> Response {
    let members = ["from", "to", "port", "protocol", "region", "probe"];
    let peer = peer.map(|p| p.0.0.ip());
    let q = match admit(&app, &method, &uri, &headers, peer, body, &members).await {
        Ok(q) => q,
        Err(refused) => return refused,
    };
    match answer_reach(&app, &q).await {
        Ok(answer) => json_response(StatusCode::OK, answer),
        Err(e) => error(&e),
    }
}

async fn answer_reach(app: &App, q: &Question) -> Result<Value, AwsError> {
    let named = |member: &str| match q.body.get(member) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        _ => Err(AwsError::new(
            "MissingParameter",
            format!(
                "The question needs '{member}': an instance id, an interface id or an address."
            ),
        )),
    };
    let (from, to) = (named("from")?, named("to")?);
    let port = match q.body.get("port") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| invalid(format!("The port {v} is not a number from 0 to 65535.")))?,
        ),
    };
    let protocol = match q.body.get("protocol") {
        None | Some(Value::Null) => Protocol::Tcp,
        Some(Value::String(p)) => match p.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "icmp" => Protocol::Icmp,
            _ => {
                return Err(invalid(format!(
                    "The protocol must be tcp, udp or icmp, not '{p}'."
                )));
            }
        },
        Some(other) => {
            return Err(invalid(format!(
                "The protocol must be tcp, udp or icmp, not {other}."
            )));
        }
    };
    let ctx = Ctx {
        region: &q.region,
        caller: q.caller.as_ref(),
        ..app.ctx()
    };
    use kumori_services::ec2::reach::{reach, render, render_ports};
    if let Some(port) = port
        && protocol == Protocol::Tcp
        && let Some(route) = kumori_services::elbv2::api::route(&ctx, to, port)
            .await
            .map_err(|e| e.0)?
    {
        return through_load_balancer(&ctx, &q.region, from, &route, port).await;
    }
    let answer = reach(&ctx, from, to, protocol, port)
        .await
        .map_err(|e| e.0)?;
    let (mut text, reachable) = match (&answer.verdict, port) {
        (Some(v), Some(port)) => (render(v, from, to, protocol, port), v.reachable),
        _ => {
            let open = !answer.ports.reachable.is_empty();
            let verdict = if open {
                "REACHABLE    "
            } else {
                "NOT REACHABLE"
            };
            (
                format!("{verdict}  {from} -> {to} {}\n", protocol.name()),
                open,
            )
        }
    };
    text.push_str(&render_ports(&answer, protocol));
    let mut out = json!({ "region": q.region, "reachable": reachable, "text": text });
    if q.body.get("probe").and_then(Value::as_bool) == Some(true) {
        let kernel = probe(app, &ctx, from, to, protocol, port, reachable).await?;
        if let Some(t) = kernel.get("text").and_then(Value::as_str) {
            let joined = format!("{}{t}", out["text"].as_str().unwrap_or_default());
            out["text"] = Value::String(joined);
        }
        out["probe"] = kernel;
    }
    Ok(out)
}

/// A question whose destination is a load balancer: the way in (the asker to one of its
/// nodes, through the load balancer's security groups) and the way on (a node to each
/// target its listener on `port` forwards to, through the targets' groups), as AWS's
/// analyzer follows a path through an ALB.
async fn through_load_balancer(
    ctx: &Ctx<'_>,
    region: &str,
    from: &str,
    route: &kumori_services::elbv2::api::Route,
    port: u16,
) -> Result<Value, AwsError> {
    use kumori_services::ec2::reach::reach;
    use std::fmt::Write;
    let mut text = String::new();
    let lb = &route.name;
    if !route.listening {
        let _ = writeln!(
            text,
            "NOT REACHABLE  {from} -> {lb} tcp/{port}\n  ELBV2_LISTENERS_MISMATCH: no listener of load balancer {lb} takes port {port}"
        );
        return Ok(json!({ "region": region, "reachable": false, "text": text }));
    }
    // The way in: any node will do, as any of the load balancer's addresses may be asked.
    let mut way_in: Option<String> = None;
    let mut why_not = String::new();
    for node in &route.nodes {
        let a = reach(ctx, from, node, Protocol::Tcp, Some(port))
            .await
            .map_err(|e| e.0)?;
        match a.verdict {
            Some(v) if v.reachable => {
                way_in = Some(node.clone());
                break;
            }
            Some(v) => {
                why_not = kumori_services::ec2::reach::render(&v, from, node, Protocol::Tcp, port);
            }
            None => {}
        }
    }
    let Some(node) = way_in else {
        let _ = writeln!(
            text,
            "NOT REACHABLE  {from} -> {lb} tcp/{port}: no node of the load balancer lets it in"
        );
        text.push_str(&why_not);
        return Ok(json!({ "region": region, "reachable": false, "text": text }));
    };
    if route.targets.is_empty() {
        let _ = writeln!(
            text,
            "NOT REACHABLE  {from} -> {lb} tcp/{port} -> (no target)\n  ELBV2_LISTENER_HAS_NO_TG: the listener's target groups have no registered targets"
        );
        return Ok(json!({ "region": region, "reachable": false, "text": text }));
    }
    let mut lines = Vec::new();
    let mut any = false;
    for (target, tport) in &route.targets {
        let a = reach(ctx, &node, target, Protocol::Tcp, Some(*tport))
            .await
            .map_err(|e| e.0)?;
        match a.verdict {
            Some(v) if v.reachable => {
                any = true;
                lines.push(format!("  {target}:{tport}  reachable"));
            }
            Some(v) => {
                let why =
                    kumori_services::ec2::reach::render(&v, &node, target, Protocol::Tcp, *tport);
                lines.push(format!("  {target}:{tport}  blocked:"));
                lines.extend(why.lines().map(|l| format!("    {l}")));
            }
            None => {}
        }
    }
    let verdict = if any {
        "REACHABLE    "
    } else {
        "NOT REACHABLE"
    };
    let _ = writeln!(
        text,
        "{verdict}  {from} -> {lb} tcp/{port} (node {node}) -> targets:"
    );
    for l in lines {
        let _ = writeln!(text, "{l}");
    }
    Ok(json!({ "region": region, "reachable": any, "text": text }))
}

/// `"probe": true`: the question's real packets through the data plane, beside the
/// engine's verdict (`reachable`), and whether the two agree.
async fn probe(
    app: &App,
    ctx: &Ctx<'_>,
    from: &str,
    to: &str,
    protocol: Protocol,
    port: Option<u16>,
    engine: bool,
) -> Result<Value, AwsError> {
    let Some(dp) = &app.config.dataplane else {
        return Err(AwsError::new(
            "InvalidParameterValue",
            "There is no data plane to probe: start kumori with --dataplane (as root).",
        ));
    };
    let port = match (protocol, port) {
        (Protocol::Icmp, p) => p.unwrap_or(0),
        (_, Some(p)) if p > 0 => p,
        _ => {
            return Err(invalid(
                "A probe sends real packets to one port: give --port (1-65535).",
            ));
        }
    };
    use kumori_services::ec2::reach::endpoint;
    let a = endpoint(ctx, from).await.map_err(|e| e.0)?;
    let b = endpoint(ctx, to).await.map_err(|e| e.0)?;
    match dp.probe(&a, &b, protocol, port).await {
        Ok(Some(o)) => {
            let agree = o.reached == engine;
            Ok(json!({
                "reached": o.reached,
                "detail": o.detail,
                "agrees": agree,
                "text": format!(
                    "kernel: {} ({}); the engine says {}{}\n",
                    if o.reached { "REACHED" } else { "NOT REACHED" },
                    o.detail,
                    if engine { "reachable" } else { "not reachable" },
                    if agree { "" } else { " -- THEY DISAGREE" },
                ),
            }))
        }
        Ok(None) => Err(invalid(format!(
            "The data plane cannot send from {from}: it is not an interface nor one of its internet hosts ({}).",
            dp.status(None)["internet_hosts"]
        ))),
        Err(e) => Err(AwsError::new(
            "InternalError",
            format!("The probe failed: {e}"),
        )),
    }
}

/// `POST /_kumori/audit`: the exposures a reviewer would flag in a region's networks, one
/// line each in the text `kumori audit` prints.
pub(crate) async fn audit(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
    body: Body,
) -> Response {
    let peer = peer.map(|p| p.0.0.ip());
    let q = match admit(&app, &method, &uri, &headers, peer, body, &["region"]).await {
        Ok(q) => q,
        Err(refused) => return refused,
    };
    let ctx = Ctx {
        region: &q.region,
        caller: q.caller.as_ref(),
        ..app.ctx()
    };
    let findings = match kumori_services::ec2::reach::audit(&ctx).await {
        Ok(f) => f,
        Err(e) => return error(&e.0),
    };
    let mut text = String::new();
    if findings.is_empty() {
        text.push_str(&format!("no findings in {}\n", q.region));
    }
    for f in &findings {
        text.push_str(&format!(
            "{:<42} {:<24} {}\n",
            f.code, f.component, f.message
        ));
    }
    let listed: Vec<Value> = findings
        .iter()
        .map(|f| json!({ "code": f.code, "component": f.component, "message": f.message }))
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "region": q.region,
            "clean": findings.is_empty(),
            "findings": listed,
            "text": text,
        }),
    )
}
