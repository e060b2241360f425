//! Temporary credentials past their expiry, through the whole server: the signature is
//! right, the session token matches, and the answer is still each service's "expired".
//! (End-to-end tests cannot wait the 15 minutes STS's shortest session lasts.)

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hmac::Mac;
use kumori_protocol::HttpRequest;
use kumori_protocol::sigv4::{self, Signature};
use kumori_server::{Config, Mode, router};
use kumori_store::{Record, Scope, Store};
use tower::ServiceExt;

const ACCOUNT: &str = "000000000000";
const KEY: &str = "ASIAKUMORITESTKEY001";
const SECRET: &str = "temporary-secret-for-the-expiry-test-0000";
const TOKEN: &str = "c2Vzc2lvbi10b2tlbg==";

async fn store_with_session(expires_at: u64) -> Store {
    let store = Store::open_memory().await.unwrap();
    let mut tx = store.write().await.unwrap();
    tx.insert(
        Scope {
            account: ACCOUNT,
            region: "global",
        },
        &Record {
            kind: "sts-credential".into(),
            id: KEY.into(),
            parent: None,
            body: serde_json::json!({
                "AccessKeyId": KEY,
                "SecretAccessKey": SECRET,
                "SessionToken": TOKEN,
                "ExpiresAt": expires_at,
                "ParentRoot": true,
            })
            .to_string(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    store
}

/// A form POST to `service`, signed now with the session's key and token.
fn signed(service: &str, body: &'static str) -> Request<Body> {
    let amz_date = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("host", "127.0.0.1:4566".parse().unwrap());
    headers.insert(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8"
            .parse()
            .unwrap(),
    );
    headers.insert("x-amz-date", amz_date.parse().unwrap());
    headers.insert("x-amz-security-token", TOKEN.parse().unwrap());
    let sig = Signature {
        access_key: KEY.into(),
        scope_date: amz_date[..8].into(),
        region: "us-east-1".into(),
        service: service.into(),
        amz_date: amz_date.clone(),
        signed_headers: ["content-type", "host", "x-amz-date", "x-amz-security-token"]
            .map(String::from)
            .to_vec(),
        signature: String::new(),
        session_token: Some(TOKEN.into()),
        expires: None,
    };
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let (_, to_sign) = sigv4::canonical(&req, &sig, false);
    let key = sigv4::signing_key(SECRET, &sig.scope_date, "us-east-1", service);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = sigv4::hex(&mac.finalize().into_bytes());
    let mut out = Request::builder().method("POST").uri("/");
    for (k, v) in &headers {
        out = out.header(k, v);
    }
    out.header(
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={KEY}/{}/us-east-1/{service}/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature={signature}",
            sig.scope_date
        ),
    )
    .body(Body::from(body))
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn call(store: Store, req: Request<Body>) -> (StatusCode, String) {
    let config = Config {
        auth: Mode::Verify,
        ..Config::default()
    };
    let resp = router(store, config).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_live_session_works_and_an_expired_one_is_refused_in_each_services_words() {
    let sts = "Action=GetCallerIdentity&Version=2011-06-15";
    let (status, body) = call(store_with_session(now() + 600).await, signed("sts", sts)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(":root</Arn>"), "{body}");

    let (status, body) = call(store_with_session(now() - 1).await, signed("sts", sts)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("<Code>ExpiredToken</Code>"), "{body}");

    let ec2 = "Action=DescribeVpcs&Version=2016-11-15";
    let (status, body) = call(store_with_session(now() - 1).await, signed("ec2", ec2)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("<Code>RequestExpired</Code>"), "{body}");
}
