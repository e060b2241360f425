//! kumori's HTTP front: one port for every AWS service, plus kumori's own `/_kumori/*`
//! endpoints (and the `/_localstack/health` and `/moto-api/reset` paths existing tooling calls).
//! Wiring only: requests go through the protocol layer to the services and back. [`ask`] is
//! the client half of `/_kumori/reach` and `/_kumori/audit`, for the `kumori` commands.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use kumori_protocol::{AwsError, HttpRequest, decode, encode_error, encode_output, new_request_id};
pub use kumori_services::Limits;
pub use kumori_services::auth::Mode;
use kumori_services::auth::{Identity, expired_token, identify, signature_error, unknown_key};
use kumori_services::{Caller, Ctx, dispatch};
use kumori_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;

pub mod ask;
pub mod background;
pub mod balancers;
pub mod databases;
pub mod dataplane;
mod own;
mod reach;
mod serve;
pub use serve::{ServeOptions, serve};

/// The largest request body kumori reads (AWS's query APIs take far less; S3 will stream).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// Settings of one running kumori.
#[derive(Clone, Debug)]
pub struct Config {
    /// The account every access key maps to until identity is enforced.
    pub account_id: String,
    /// Region of requests that name none (unsigned, no AWS host name).
    pub default_region: String,
    pub limits: Limits,
    /// What is checked of each request's credentials.
    pub auth: Mode,
    /// Host names, besides loopback ones, under which kumori's own endpoints
    /// (`/_kumori/*`) answer: the name it is served as when not on loopback. Others are
    /// refused so that a web page cannot reach them through DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Where services keep blobs (S3 objects, backups): beside the store's state, and on a
    /// shared place when nodes share a database. Handed to services as they come to use it.
    pub blobs: Arc<kumori_blobs::Blobs>,
    /// The data plane, when this server runs one (`--dataplane`).
    pub dataplane: Option<Arc<dataplane::Dataplane>>,
    /// The load balancers' proxies, when this server runs them.
    pub balancers: Option<Arc<balancers::Balancers>>,
    /// The database servers behind RDS, when this server runs them.
    pub databases: Option<Arc<databases::Databases>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account_id: "000000000000".into(),
            default_region: "us-east-1".into(),
            limits: Limits::default(),
            auth: Mode::Off,
            allowed_hosts: Vec::new(),
            blobs: Arc::new(kumori_blobs::Blobs::memory()),
            dataplane: None,
            balancers: None,
            databases: None,
        }
    }
}

struct App {
    store: Store,
    config: Config,
}

impl App {
    /// A context for kumori's own work (no caller) in the default region.
    fn ctx(&self) -> Ctx<'_> {
        Ctx::root(
            &self.store,
            &self.config.account_id,
            &self.config.default_region,
            &self.config.limits,
        )
    }
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
        .route("/_kumori/imds-endpoint/{instance_id}", get(imds_endpoint))
        .route("/_kumori/load-balancers", get(load_balancers))
        .route(reach::REACH_PATH, post(reach::reach))
        .route(reach::AUDIT_PATH, post(reach::audit))
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

/// Where each load balancer's listeners really listen: on their own port of 127.0.0.1, or
/// on another when that one was taken.
async fn load_balancers(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(refused) = own::check_request(&app.config, &headers) {
        return refused;
    }
    let bound = app
        .config
        .balancers
        .as_ref()
        .map(|b| b.bound())
        .unwrap_or_default();
    json_response(
        StatusCode::OK,
        serde_json::json!({ "Listeners": serde_json::to_value(bound).unwrap_or_default() }),
    )
}

async fn health(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(refused) = own::check_request(&app.config, &headers) {
        return refused;
    }
    // LocalStack's shape (a status per service), and beside it how much of each is served.
    let mut services = serde_json::Map::new();
    let mut operations = serde_json::Map::new();
    for s in &kumori_protocol::model::SERVICES {
        let implemented = kumori_services::kit::implemented(s.name);
        let status = if implemented > 0 {
            "available"
        } else {
            "recognised"
        };
        services.insert(s.name.to_string(), status.into());
        operations.insert(
            s.name.to_string(),
            serde_json::json!({
                "implemented": implemented,
                "total": s.model().operations().count(),
            }),
        );
    }
    // Where the state lives is the operator's business, not every local caller's: it is
    // printed at start and not shown here.
    // A database that does not answer makes the node unhealthy (503), so that a load
    // balancer in front of several nodes stops sending it calls it cannot serve.
    let answers = app.store.ping().await;
    json_response(
        if answers {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "services": services,
            "operations": operations,
            "state": { "backend": app.store.backend(), "database": if answers { "answers" } else { "unreachable" } },
            "dataplane": match &app.config.dataplane {
                Some(d) => {
                    let changes = match app.store.read().await {
                        Ok(mut tx) => tx.changes().await.ok(),
                        Err(_) => None,
                    };
                    Some(d.status(changes))
                }
                None => None,
            },
        }),
    )
}

/// Drops all state. With authentication on, only a request signed by the account's root
/// may; in every mode a browser page from another origin may not.
async fn reset(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refused) = own::check_request(&app.config, &headers) {
        return refused;
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => {
            return own::refusal(
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                &e.message,
            );
        }
    };
    let mut root_key = None;
    if app.config.auth != Mode::Off {
        let req = HttpRequest {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query().unwrap_or(""),
            headers: &headers,
            body: &body,
        };
        match own::require_root(&app, &req).await {
            Ok(key) => root_key = Some(key),
            Err(refused) => return refused,
        }
    }
    match app.store.reset().await {
        Ok(()) => {
            // The operator keeps the key they reset with: without it, an enforcing kumori
            // would answer no one until restarted.
            if let Some(key) = root_key {
                let ctx = app.ctx();
                if let Err(e) = kumori_services::auth::ensure_root_key(&ctx, Some(key)).await {
                    tracing::error!("the root key could not be kept across the reset: {}", e.0);
                }
            }
            json_response(StatusCode::OK, serde_json::json!({ "reset": true }))
        }
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "error": e.to_string() }),
        ),
    }
}

/// Reads a request body of at most [`MAX_BODY`] bytes.
async fn read_body(body: Body) -> Result<Bytes, AwsError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        let e = e.into_inner();
        if e.is::<http_body_util::LengthLimitError>() {
            AwsError::new(
                "RequestEntityTooLarge",
                format!("The request body is larger than kumori accepts ({MAX_BODY} bytes)."),
            )
            .with_status(413)
        } else {
            AwsError::new(
                "IncompleteBody",
                format!("kumori could not read the whole request body: {e}"),
            )
        }
    })
}

/// The metadata service of one instance: `/_kumori/imds/<instance-id>/latest/…`.
async fn imds(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = own::check_request(&app.config, &headers) {
        return refused;
    }
    let rest = uri.path().trim_start_matches("/_kumori/imds/");
    let (instance_id, mut path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    // With authentication on, the endpoint carries the instance's own secret
    // (`…/imds/<instance-id>/<secret>/latest/…`), which only its launcher and the operator
    // can obtain: knowing an instance id must not be enough to act as the instance.
    let secret = if app.config.auth != Mode::Off {
        let seg = path.trim_start_matches('/');
        let (secret, after) = match seg.find('/') {
            Some(at) => (&seg[..at], &seg[at..]),
            None => (seg, "/"),
        };
        path = after;
        Some(secret)
    } else {
        None
    };
    let req = kumori_services::ec2::imds::ImdsRequest {
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
    let ctx = app.ctx();
    if let Some(secret) = secret {
        match kumori_services::ec2::imds::endpoint_secret_valid(&ctx, instance_id, secret).await {
            Ok(true) => {}
            Ok(false) => {
                return own::refusal(
                    StatusCode::FORBIDDEN,
                    "This metadata endpoint needs the instance's secret:                      /_kumori/imds/<instance-id>/<secret>/ (see `kumori imds-endpoint`).",
                );
            }
            Err(e) => {
                tracing::error!("metadata service: {}", e.0);
                return (StatusCode::INTERNAL_SERVER_ERROR, e.0.to_string()).into_response();
            }
        }
    }
    match kumori_services::ec2::imds::handle(&ctx, instance_id, &req).await {
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

/// The metadata endpoint of an instance (with its secret), for the principal that launched
/// it or the account's root, by a signed request; with authentication off, the plain one.
async fn imds_endpoint(
    State(app): State<Arc<App>>,
    axum::extract::Path(instance_id): axum::extract::Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = own::check_request(&app.config, &headers) {
        return refused;
    }
    let req = HttpRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &headers,
        body: &[],
    };
    let caller = if app.config.auth == Mode::Off {
        None
    } else {
        match own::signed_caller(&app, &req).await {
            Ok(c) => Some(c),
            Err(refused) => return refused,
        }
    };
    let ctx = Ctx {
        caller: caller.as_ref(),
        ..app.ctx()
    };
    match kumori_services::ec2::imds::endpoint_path(
        &ctx,
        &instance_id,
        app.config.auth != Mode::Off,
    )
    .await
    {
        Ok(Some(path)) => json_response(StatusCode::OK, serde_json::json!({ "path": path })),
        Ok(None) => own::refusal(
            StatusCode::NOT_FOUND,
            &format!(
                "No instance {instance_id} that this caller launched (only its launcher and the \
                 account's root may have its metadata endpoint)."
            ),
        ),
        Err(e) => own::refusal(StatusCode::INTERNAL_SERVER_ERROR, &e.0.message),
    }
}

async fn aws(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => {
            let req = HttpRequest {
                method: method.as_str(),
                path: uri.path(),
                query: uri.query().unwrap_or(""),
                headers: &headers,
                body: &[],
            };
            let model = kumori_protocol::model_of(&req);
            return to_response(encode_error(model, &e, &request_id));
        }
    };
    let req = HttpRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    let resp = match decode(&req, &app.config.default_region) {
        // AWS checks who is asking before what is asked: a tampered request is a bad
        // signature, not an unknown action.
        Err(failure) if app.config.auth != Mode::Off => {
            let ctx = app.ctx();
            let service = failure.model.map_or("ec2", |m| m.service);
            let region = app.config.default_region.clone();
            match authenticate(&app, &ctx, &req, service, &region, None).await {
                Err(err) => encode_error(failure.model, &err, &request_id),
                Ok(_) => encode_error(failure.model, &failure.error, &request_id),
            }
        }
        Err(failure) => encode_error(failure.model, &failure.error, &request_id),
        Ok(call) => {
            let base = Ctx {
                region: &call.region,
                ..app.ctx()
            };
            match authenticate(
                &app,
                &base,
                &req,
                call.service(),
                &call.region,
                call.access_key.as_deref(),
            )
            .await
            {
                Err(err) => encode_error(Some(call.model), &err, &request_id),
                Ok(identity) => {
                    let caller: Option<Caller> = identity.as_ref().map(|i| i.caller.clone());
                    let ctx = Ctx {
                        caller: caller.as_ref(),
                        ..base
                    };
                    let allowed = match (&identity, app.config.auth) {
                        (Some(i), Mode::Enforce) => {
                            kumori_services::authz::authorize(
                                &ctx,
                                i,
                                &call,
                                peer.map(|p| p.0.0.ip()),
                            )
                            .await
                        }
                        _ => Ok(()),
                    };
                    match allowed {
                        Err(err) => encode_error(Some(call.model), &err, &request_id),
                        Ok(()) => match dispatch(&ctx, &call).await {
                            Ok(output) => encode_output(&call, &output, &request_id),
                            Err(err) => {
                                if err.status >= 500 && err.status != 501 {
                                    tracing::error!(operation = %call.operation.name, "{err}");
                                }
                                encode_error(Some(call.model), &err, &request_id)
                            }
                        },
                    }
                }
            }
        }
    };
    to_response(resp)
}

fn to_response(resp: kumori_protocol::HttpResponse) -> Response {
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

/// Who sent `req`, as far as the deployment's mode checks: with authentication off, the
/// owner of a key IAM knows (unverified); otherwise the signature must hold for a key IAM
/// knows, active, with its session token, before it expires.
async fn authenticate(
    app: &App,
    ctx: &Ctx<'_>,
    req: &HttpRequest<'_>,
    service: &str,
    region: &str,
    access_key: Option<&str>,
) -> Result<Option<Identity>, kumori_protocol::AwsError> {
    let internal = |e: kumori_services::Error| e.0;
    if app.config.auth == Mode::Off {
        // Only keys of IAM's shape can be IAM's: the usual `test` key costs no lookup.
        return match access_key.filter(|k| k.starts_with("AKIA") || k.starts_with("ASIA")) {
            Some(k) => Ok(identify(ctx, k).await.map_err(internal)?),
            None => Ok(None),
        };
    }
    let sig = kumori_protocol::sigv4::parse(req).map_err(|e| signature_error(service, &e))?;
    let Some(mut identity) = identify(ctx, &sig.access_key).await.map_err(internal)? else {
        return Err(unknown_key(service));
    };
    if !identity.active || identity.session_token.as_deref() != sig.session_token.as_deref() {
        return Err(unknown_key(service));
    }
    let now = time::OffsetDateTime::now_utc();
    if identity
        .expires_at
        .is_some_and(|e| (e as i64) < now.unix_timestamp())
    {
        return Err(expired_token(service));
    }
    kumori_protocol::sigv4::verify(req, &sig, &identity.secret, now, service == "s3")
        .map_err(|e| signature_error(service, &e))?;
    identity.caller.verified = true;
    if !identity.caller.temporary {
        kumori_services::iam::access_keys::note_use(
            ctx,
            &sig.access_key,
            service,
            region,
            identity.last_used.as_ref(),
        )
        .await
        .map_err(internal)?;
    } else if let Some(role) = &identity.role {
        // A role's credentials signed it: GetRole's RoleLastUsed says so.
        kumori_services::iam::roles::note_use(ctx, role, region)
            .await
            .map_err(internal)?;
    }
    Ok(Some(identity))
}
