//! The listeners: HTTP ones evaluate the rules and forward through a pooled hyper client,
//! answering as ALB does when it cannot (502 when the target fails, 503 when there is no
//! target, 504 when it does not answer within the idle timeout); TCP ones pick a target
//! per connection and copy bytes both ways.

use crate::rules::{self, Action};
use crate::{Groups, ListenerConfig, Protocol};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

/// What forwarded requests carry: the client's body as it streams in, or nothing (checks).
pub type RequestBody = BoxBody<Bytes, hyper::Error>;
pub type ResponseBody = BoxBody<Bytes, hyper::Error>;
pub type Client = hyper_util::client::legacy::Client<Connector, RequestBody>;

/// Connects the pooled client to targets (always addresses) from where its dialer is.
#[derive(Clone, Debug)]
pub struct Connector(crate::Dialer);

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Self::Response>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let dialer = self.0.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
            let ip: std::net::IpAddr = host
                .parse()
                .map_err(|_| std::io::Error::other(format!("'{host}' is not an address")))?;
            let addr = SocketAddr::new(ip, uri.port_u16().unwrap_or(80));
            Ok(TokioIo::new(dialer.connect(addr).await?))
        })
    }
}

/// A pooled client whose connections leave from where `dialer` is.
pub fn client(dialer: crate::Dialer) -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(60))
        .build(Connector(dialer))
}

fn full(body: impl Into<Bytes>) -> ResponseBody {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An answer of the load balancer's own, as ALB words its errors.
fn own(status: u16, content_type: &str, body: String) -> Response<ResponseBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = r.headers_mut();
    h.insert(
        "server",
        hyper::header::HeaderValue::from_static("awselb/2.0"),
    );
    if let Ok(v) = content_type.parse() {
        h.insert("content-type", v);
    }
    r
}

fn error_page(status: u16) -> Response<ResponseBody> {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    own(
        status,
        "text/html",
        format!(
            "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
        ),
    )
}

/// Serves one listener's socket until the task is aborted.
pub async fn serve(
    socket: tokio::net::TcpListener,
    protocol: Protocol,
    config: Arc<RwLock<Arc<ListenerConfig>>>,
    groups: Arc<RwLock<Groups>>,
    client: Client,
    dialer: crate::Dialer,
) {
    loop {
        let Ok((stream, peer)) = socket.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (config, groups, client, dialer) = (
            config.clone(),
            groups.clone(),
            client.clone(),
            dialer.clone(),
        );
        tokio::spawn(async move {
            match protocol {
                Protocol::Http => serve_http(stream, peer, config, groups, client).await,
                Protocol::Tcp => serve_tcp(stream, config, groups, dialer).await,
            }
        });
    }
}

fn snapshot<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

async fn serve_tcp(
    mut stream: tokio::net::TcpStream,
    config: Arc<RwLock<Arc<ListenerConfig>>>,
    groups: Arc<RwLock<Groups>>,
    dialer: crate::Dialer,
) {
    let listener = snapshot(&config);
    let groups = snapshot(&groups);
    let Some(Action::Forward { groups: names, .. }) = listener.rules.last().map(|r| &r.action)
    else {
        return;
    };
    let Some(group) = names.first().and_then(|(n, _)| groups.get(n)) else {
        return;
    };
    let Some(target) = group.pick(None) else {
        return;
    };
    let Some(addr) = target.addr else { return };
    let Ok(mut upstream) = dialer.connect(addr).await else {
        return;
    };
    target.cell.in_flight.fetch_add(1, Ordering::Relaxed);
    let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
    target.cell.in_flight.fetch_sub(1, Ordering::Relaxed);
}

async fn serve_http(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    config: Arc<RwLock<Arc<ListenerConfig>>>,
    groups: Arc<RwLock<Groups>>,
    client: Client,
) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let listener = snapshot(&config);
        let groups = snapshot(&groups);
        let client = client.clone();
        async move {
            Ok::<_, std::convert::Infallible>(handle(req, peer, &listener, &groups, &client).await)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

const STICKY_COOKIE: &str = "AWSALB";

fn sticky_target(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == STICKY_COOKIE)
        .and_then(|(_, v)| {
            let bytes: Option<Vec<u8>> = (0..v.len())
                .step_by(2)
                .map(|i| v.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect();
            String::from_utf8(bytes?).ok()
        })
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Picks among weighted target groups.
fn weighted(names: &[(String, u32)]) -> Option<&str> {
    let total: u32 = names.iter().map(|(_, w)| *w).sum();
    if names.len() == 1 || total == 0 {
        return names.first().map(|(n, _)| n.as_str());
    }
    use rand::Rng;
    let mut roll = rand::rng().random_range(0..total);
    for (n, w) in names {
        if roll < *w {
            return Some(n);
        }
        roll -= w;
    }
    names.last().map(|(n, _)| n.as_str())
}

async fn handle(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    listener: &ListenerConfig,
    groups: &Groups,
    client: &Client,
) -> Response<ResponseBody> {
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .or(req.uri().host())
        .unwrap_or_default()
        .to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let action = {
        let view = rules::Request {
            method: req.method().as_str(),
            path: &path,
            query: &query,
            host: &host,
            headers: req.headers(),
            source: peer.ip(),
        };
        rules::choose(&listener.rules, &view).cloned()
    };
    let Some(action) = action else {
        return error_page(503);
    };
    match &action {
        Action::Fixed {
            status,
            content_type,
            body,
        } => own(
            *status,
            content_type
                .as_deref()
                .unwrap_or("text/plain; charset=utf-8"),
            body.clone(),
        ),
        Action::Redirect { status, .. } => {
            let location =
                rules::redirect_location(&action, "http", listener.port, &host, &path, &query)
                    .unwrap_or_default();
            let mut r = own(*status, "text/html", String::new());
            if let Ok(v) = location.parse() {
                r.headers_mut().insert("location", v);
            }
            r
        }
        Action::Forward { groups: names, .. } => {
            let Some(group) = weighted(names).and_then(|n| groups.get(n)) else {
                return error_page(503);
            };
            let sticky = group.stickiness.and_then(|_| sticky_target(&req));
            let Some(target) = group.pick(sticky.as_deref()) else {
                return error_page(503);
            };
            let Some(addr) = target.addr else {
                return error_page(503);
            };
            let pq = req
                .uri()
                .path_and_query()
                .map_or("/".to_string(), |p| p.to_string());
            let Ok(uri) = format!("http://{addr}{pq}").parse() else {
                return error_page(400);
            };
            *req.uri_mut() = uri;
            let h = req.headers_mut();
            h.remove("connection");
            h.remove("keep-alive");
            let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                Some(before) => format!("{before}, {}", peer.ip()),
                None => peer.ip().to_string(),
            };
            if let Ok(v) = xff.parse() {
                h.insert("x-forwarded-for", v);
            }
            h.insert(
                "x-forwarded-proto",
                hyper::header::HeaderValue::from_static("http"),
            );
            if let Ok(v) = listener.port.to_string().parse() {
                h.insert("x-forwarded-port", v);
            }
            if !h.contains_key("x-amzn-trace-id") {
                use rand::Rng;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let id: u128 = rand::rng().random();
                let trace = format!("Root=1-{now:08x}-{:024x}", id & ((1u128 << 96) - 1));
                if let Ok(v) = trace.parse() {
                    h.insert("x-amzn-trace-id", v);
                }
            }
            let (parts, body) = req.into_parts();
            let req = Request::from_parts(parts, body.boxed());
            target.cell.in_flight.fetch_add(1, Ordering::Relaxed);
            let answer = tokio::time::timeout(listener.idle_timeout, client.request(req)).await;
            target.cell.in_flight.fetch_sub(1, Ordering::Relaxed);
            match answer {
                Err(_) => error_page(504),
                Ok(Err(_)) => error_page(502),
                Ok(Ok(response)) => {
                    let (parts, body) = response.into_parts();
                    let mut r = Response::from_parts(parts, body.boxed());
                    if let Some(duration) = group.stickiness {
                        let cookie = format!(
                            "{STICKY_COOKIE}={}; Max-Age={}; Path=/",
                            hex(&target.key),
                            duration.as_secs()
                        );
                        if let Ok(v) = cookie.parse() {
                            r.headers_mut().append("set-cookie", v);
                        }
                    }
                    r
                }
            }
        }
    }
}
