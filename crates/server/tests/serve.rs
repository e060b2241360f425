//! The accept loop's promises, on a real socket: a panicking handler answers InternalError
//! and the process goes on; a request past its time limit is answered, not left hanging.

use axum::Router;
use axum::routing::get;
use kumori_server::{ServeOptions, serve};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get_raw(port: u16, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    out
}

async fn boom() -> &'static str {
    // Out of bounds, as a handler bug would be.
    let answers: Vec<&'static str> = Vec::new();
    answers[std::hint::black_box(0)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_one_requests_internal_error_and_a_slow_request_times_out() {
    let app = Router::new()
        .route("/boom", get(boom))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/ok", get(|| async { "fine" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let options = ServeOptions {
        request_timeout: Duration::from_secs(1),
        ..ServeOptions::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, options, async {
        let _ = stopped.await;
    }));

    let boom = get_raw(port, "/boom").await;
    assert!(boom.starts_with("HTTP/1.1 500"), "{boom}");
    assert!(boom.contains("<Code>InternalError</Code>"), "{boom}");
    let slow = get_raw(port, "/slow").await;
    assert!(slow.starts_with("HTTP/1.1 503"), "{slow}");
    assert!(slow.contains("<Code>RequestTimeout</Code>"), "{slow}");
    let ok = get_raw(port, "/ok").await;
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.ends_with("fine"),
        "{ok}"
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("shutdown within 5 s")
        .unwrap()
        .unwrap();
}
