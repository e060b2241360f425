//! Guards on kumori's own endpoints (`/_kumori/*` and their LocalStack/moto aliases), which
//! no AWS SDK signs and which a web page in the user's browser could otherwise reach:
//! they answer only under a loopback or configured Host (DNS rebinding), never to a request
//! a page of another origin sent, and — where they change state with authentication on —
//! only to a request signed by the account's root.

use crate::{App, Config, authenticate};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kumori_protocol::HttpRequest;
use kumori_services::auth::Identity;
use kumori_services::{Caller, Principal};
use std::net::IpAddr;

/// A refusal of kumori's own endpoints: JSON, as their answers are.
pub fn refusal(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [("content-type", "application/json")], body).into_response()
}

/// Whether `host` (a Host header's or an Origin's host, port included or not) names this
/// machine's loopback or a name the operator allowed.
fn host_allowed(config: &Config, host: &str) -> bool {
    let name = strip_port(host).to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    config
        .allowed_hosts
        .iter()
        .any(|a| strip_port(a).eq_ignore_ascii_case(&name))
}

/// `host:port`, `[v6]:port`, `host` → the host.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest
            .split(']')
            .next()
            .map_or(host, |h| &host[..h.len() + 2]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Refuses a request whose Host is not one of this machine's loopback names (or allowed), or
/// that a page of another origin sent (browsers always send `Origin` on such requests).
#[allow(clippy::result_large_err)]
pub fn check_request(config: &Config, headers: &HeaderMap) -> Result<(), Response> {
    if let Some(host) = headers.get("host") {
        let host = host.to_str().unwrap_or("");
        if !host_allowed(config, host) {
            return Err(refusal(
                StatusCode::FORBIDDEN,
                &format!(
                    "kumori's own endpoints answer only under a loopback host name, not '{host}' \
                     (start kumori with --allowed-host {} to serve it under that name).",
                    strip_port(host)
                ),
            ));
        }
    }
    if let Some(origin) = headers.get("origin") {
        let origin = origin.to_str().unwrap_or("");
        let host = origin
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
            .unwrap_or("");
        if host.is_empty() || !host_allowed(config, host) {
            return Err(refusal(
                StatusCode::FORBIDDEN,
                &format!("kumori's own endpoints refuse requests from web pages of '{origin}'."),
            ));
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "kumori's own endpoints refuse cross-site requests from web pages.",
        ));
    }
    Ok(())
}

/// The caller of a SigV4-signed request to one of kumori's own endpoints.
#[allow(clippy::result_large_err)]
pub async fn signed_caller(app: &App, req: &HttpRequest<'_>) -> Result<Caller, Response> {
    signed_identity(app, req).await.map(|i| i.caller)
}

#[allow(clippy::result_large_err)]
async fn signed_identity(app: &App, req: &HttpRequest<'_>) -> Result<Identity, Response> {
    let unauthorized = |m: String| refusal(StatusCode::FORBIDDEN, &m);
    let sig = kumori_protocol::sigv4::parse(req).map_err(|_| {
        unauthorized(
            "This endpoint needs a request signed with SigV4 (authentication is on).".into(),
        )
    })?;
    let ctx = app.ctx();
    match authenticate(
        app,
        &ctx,
        req,
        &sig.service,
        &sig.region,
        Some(&sig.access_key),
    )
    .await
    {
        Ok(Some(identity)) => Ok(identity),
        Ok(None) => Err(unauthorized("The request's access key is unknown.".into())),
        Err(e) => Err(unauthorized(format!("{}: {}", e.code, e.message))),
    }
}

/// Refuses a request not signed by the account's root; gives the root key that signed it.
#[allow(clippy::result_large_err)]
pub async fn require_root(app: &App, req: &HttpRequest<'_>) -> Result<(String, String), Response> {
    let identity = signed_identity(app, req).await?;
    let caller = &identity.caller;
    if caller.principal != Principal::Root {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            &format!(
                "Only the account's root may reset kumori; {} may not.",
                caller.arn
            ),
        ));
    }
    Ok((caller.access_key.clone(), identity.secret))
}
