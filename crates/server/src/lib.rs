//! kumori's HTTP front: one port for every AWS service, plus kumori's own `/_kumori/*`
//! endpoints (and the `/_localstack/health` and `/moto-api/reset` paths existing tooling calls).
//! Wiring only: requests go through the protocol layer to the services and back.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use kumori_protocol::{HttpRequest, decode, encode_error, encode_output, new_request_id};
pub use kumori_services::Limits;
use kumori_services::{Ctx, dispatch};
use kumori_store::Store;
use std::sync::Arc;

/// Settings of one running kumori.
#[derive(Clone, Debug)]
pub struct Config {
    /// The account every access key maps to until identity is enforced.
    pub account_id: String,
    /// Region of requests that name none (unsigned, no AWS host name).
    pub default_region: String,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account_id: "000000000000".into(),
            default_region: "us-east-1".into(),
            limits: Limits::default(),
        }
    }
}

struct App {
    store: Store,
    config: Config,
}

/// The router serving everything on one port.
pub fn router(store: Store, config: Config) -> Router {
    let app = Arc::new(App { store, config });
    Router::new()
        .route("/_kumori/health", get(health))
        .route("/_localstack/health", get(health))
        .route("/_kumori/reset", post(reset))
        .route("/moto-api/reset", post(reset))
        .route("/_kumori/imds/{*rest}", any(imds))
        .fallback(aws)
        .with_state(app)
}

fn json_response(status: StatusCode, v: serde_json::Value) -> Response {
    let headers = [
        ("content-type", "application/json".to_string()),
        ("x-amzn-RequestId", new_request_id()),
    ];
    (status, headers, v.to_string()).into_response()
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let services: serde_json::Map<String, serde_json::Value> = kumori_protocol::model::SERVICES
        .iter()
        .map(|s| {
            let status = if s.name == "ec2" {
                "available"
            } else {
                "recognised"
            };
            (s.name.to_string(), status.into())
        })
        .collect();
    json_response(
        StatusCode::OK,
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "services": services,
            "state": {
                "backend": app.store.backend(),
                "location": app.store.location().map(|p| p.display().to_string()),
            },
        }),
    )
}

async fn reset(State(app): State<Arc<App>>) -> Response {
    match app.store.reset().await {
        Ok(()) => json_response(StatusCode::OK, serde_json::json!({ "reset": true })),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "error": e.to_string() }),
        ),
    }
}

/// The metadata service of one instance: `/_kumori/imds/<instance-id>/latest/…`.
async fn imds(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let rest = uri.path().trim_start_matches("/_kumori/imds/");
    let (instance_id, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let req = kumori_services::imds::ImdsRequest {
        method: method.as_str(),
        path,
        headers: headers
            .iter()
            .filter_map(|(n, v)| {
                Some((
                    n.as_str().to_ascii_lowercase(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .collect(),
    };
    let ctx = Ctx {
        store: &app.store,
        account: &app.config.account_id,
        region: &app.config.default_region,
        limits: &app.config.limits,
    };
    match kumori_services::imds::handle(&ctx, instance_id, &req).await {
        Ok(r) => {
            let mut out = Response::new(Body::from(r.body));
            *out.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
            let h = out.headers_mut();
            h.insert("content-type", HeaderValue::from_static("text/plain"));
            h.insert("server", HeaderValue::from_static("EC2ws"));
            for (name, value) in r.headers {
                if let (Ok(n), Ok(v)) = (
                    axum::http::HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    h.insert(n, v);
                }
            }
            out
        }
        Err(e) => {
            tracing::error!("metadata service: {}", e.0);
            (StatusCode::INTERNAL_SERVER_ERROR, e.0.to_string()).into_response()
        }
    }
}

async fn aws(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = new_request_id();
    let req = HttpRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    let resp = match decode(&req, &app.config.default_region) {
        Err(failure) => encode_error(failure.model, &failure.error, &request_id),
        Ok(call) => {
            let ctx = Ctx {
                store: &app.store,
                account: &app.config.account_id,
                region: &call.region,
                limits: &app.config.limits,
            };
            match dispatch(&ctx, &call).await {
                Ok(output) => encode_output(&call, &output, &request_id),
                Err(err) => {
                    if err.status >= 500 && err.status != 501 {
                        tracing::error!(operation = %call.operation.name, "{err}");
                    }
                    encode_error(Some(call.model), &err, &request_id)
                }
            }
        }
    };
    let mut out = Response::new(Body::from(resp.body));
    *out.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = out.headers_mut();
    h.insert("content-type", HeaderValue::from_static(resp.content_type));
    for (name, value) in resp.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    out
}
