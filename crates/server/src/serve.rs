//! The accept loop: hyper's HTTP/1 connections driven by kumori itself rather than
//! `axum::serve`, because a local cloud shared by a team must not be held by slow or idle
//! clients. Every connection has a header-read deadline (which also closes keep-alive
//! connections left idle), every request a time limit, the number of open connections a cap
//! with a clear refusal past it, and a panic in any handler becomes AWS's `InternalError`
//! for that one request instead of a dropped connection.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// How the server treats connections and requests.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// A client must finish sending a request's headers within this; a keep-alive connection
    /// that sends nothing for this long is closed.
    pub header_read_timeout: Duration,
    /// The longest a request may take, body included, before it is answered with an error.
    pub request_timeout: Duration,
    /// Open connections at most; the next one is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish
/// (for at most the request timeout).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a reset during the handshake: keep serving the
                    // connections already open, and try again shortly.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let app = app.clone();
                let options = options.clone();
                let mut stop = stop_rx.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let svc = hyper::service::service_fn(move |req| {
                        handle(app.clone(), req, peer, options.request_timeout)
                    });
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder
                        .timer(TokioTimer::new())
                        .header_read_timeout(options.header_read_timeout);
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stopped(&mut stop) => {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(options.request_timeout, conn).await;
                        }
                    }
                });
            }
            Err(_) => {
                let max = options.max_connections;
                tokio::spawn(refuse(stream, max));
            }
        }
    }
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it ends: all slots back means all are done.
    let all = u32::try_from(options.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        options.request_timeout + Duration::from_secs(1),
        slots.acquire_many(all),
    )
    .await;
    Ok(())
}

/// Resolves once shutdown has begun.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One request: run on its own task, so that a panic is caught and answered, and bounded in
/// time.
async fn handle(
    app: Router,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    limit: Duration,
) -> Result<Response<Body>, Infallible> {
    req.extensions_mut().insert(ConnectInfo(peer));
    let req = req.map(Body::new);
    let task = tokio::spawn(tokio::time::timeout(limit, app.oneshot(req)));
    Ok(match task.await {
        Ok(Ok(Ok(resp))) => resp,
        Ok(Ok(Err(never))) => match never {},
        Ok(Err(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "RequestTimeout",
            &format!(
                "kumori did not finish this request within {} s; it was abandoned and nothing \
                 it began was kept.",
                limit.as_secs()
            ),
        ),
        Err(e) => {
            let why = panic_text(e);
            tracing::error!("a request handler panicked: {why}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "kumori failed while serving this request (a bug: its log has the details); \
                 nothing it began was kept.",
            )
        }
    })
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into()),
        Err(e) => e.to_string(),
    }
}

/// An error in EC2's envelope: the request was not decoded, so its own service is unknown,
/// and every SDK reads the code and message from this shape.
fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = kumori_protocol::encode_error(
        None,
        &kumori_protocol::AwsError::new(code, message).with_status(status.as_u16()),
        &kumori_protocol::new_request_id(),
    );
    let mut resp = Response::new(Body::from(body.body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static(body.content_type),
    );
    resp
}

/// Past the connection cap: a 503 the client can read, then the connection is closed.
async fn refuse(mut stream: tokio::net::TcpStream, max: usize) {
    let body = kumori_protocol::encode_error(
        None,
        &kumori_protocol::AwsError::new(
            "ServiceUnavailable",
            format!("kumori is serving its limit of {max} open connections; retry shortly."),
        )
        .with_status(503),
        &kumori_protocol::new_request_id(),
    )
    .body;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n\
         content-type: text/xml;charset=UTF-8\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}
