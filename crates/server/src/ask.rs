//! The client half of `/_kumori/reach` and `/_kumori/audit` (`reach.rs`): how `kumori reach`
//! and `kumori audit` ask a running server, over plain HTTP/1.1 (hyper's client), signed with
//! SigV4 when credentials are given, as the server asks under `--auth verify|enforce`.

use crate::reach::{AUDIT_PATH, REACH_PATH};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Request};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use kumori_protocol::HttpRequest;
use kumori_protocol::sigv4::{self, Signature};
use serde_json::{Value, json};
use sha2::Sha256;
use std::fmt;
use std::time::Duration;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an answer may take (the server's own limit per request is 60 s by default).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest answer read.
const MAX_ANSWER: usize = 64 * 1024 * 1024;
/// The service name the requests are signed for: the answers are EC2's network.
const SIGNING_SERVICE: &str = "ec2";

/// An AWS access key to sign with.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret: String,
    pub session_token: Option<String>,
}

impl Credentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, as every AWS
    /// tool reads them; `None` unless both of the first two are set.
    pub fn from_env() -> Option<Credentials> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(Credentials {
            access_key: var("AWS_ACCESS_KEY_ID")?,
            secret: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Where and as whom to ask.
pub struct Server<'a> {
    /// `http://host:port`, as `--endpoint-url` gives it.
    pub endpoint: &'a str,
    /// The region asked about; `None` for the server's default region.
    pub region: Option<&'a str>,
    pub credentials: Option<&'a Credentials>,
}

/// What the server answered: the text to print, and whether the verdict is the good one
/// (reachable; no findings).
#[derive(Debug)]
pub struct Told {
    pub ok: bool,
    pub text: String,
}

#[derive(Debug)]
pub enum AskError {
    /// No answer from a kumori at the endpoint: a bad URL, nothing listening, a timeout.
    Unreachable(String),
    /// The server answered with an error (or with what this client does not understand).
    Failed(String),
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::Unreachable(m) | AskError::Failed(m) => f.write_str(m),
        }
    }
}

/// A reachability question (see `reach.rs`): the text `kumori reach` prints, `ok` when
/// reachable (on `port`, or on some port when none is given).
pub async fn reach(
    server: &Server<'_>,
    from: &str,
    to: &str,
    port: Option<u16>,
    protocol: &str,
    probe: bool,
) -> Result<Told, AskError> {
    let mut question = json!({
        "from": from,
        "to": to,
        "port": port,
        "protocol": protocol,
        "region": server.region,
    });
    if probe {
        question["probe"] = Value::Bool(true);
    }
    let answer = post(server, REACH_PATH, &question).await?;
    told(server, &answer, "reachable")
}

/// The audit of a region: the text `kumori audit` prints, `ok` when there is no finding.
pub async fn audit(server: &Server<'_>) -> Result<Told, AskError> {
    let answer = post(server, AUDIT_PATH, &json!({ "region": server.region })).await?;
    told(server, &answer, "clean")
}

fn told(server: &Server<'_>, answer: &Value, verdict: &str) -> Result<Told, AskError> {
    match (answer["text"].as_str(), answer[verdict].as_bool()) {
        (Some(text), Some(ok)) => Ok(Told {
            ok,
            text: text.to_string(),
        }),
        _ => Err(AskError::Failed(format!(
            "the server at {} answered what this kumori does not understand: {}",
            server.endpoint,
            excerpt(answer.to_string().as_bytes())
        ))),
    }
}

/// Where an `http://` endpoint URL points.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// `host[:port]` as written: the Host header.
    authority: String,
    host: String,
    port: u16,
    /// A path the endpoint carries (without its last `/`), put before kumori's paths.
    prefix: String,
}

fn target(url: &str) -> Result<Target, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(if url.starts_with("https://") {
            format!("kumori serves plain HTTP: give an http:// endpoint, not '{url}'")
        } else {
            format!(
                "the endpoint must be an http:// URL such as http://127.0.0.1:4566, not '{url}'"
            )
        });
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let bad = || format!("'{url}' names no host and port kumori could be at");
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse::<u16>().map_err(|_| bad())?,
    };
    if host.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    Ok(Target {
        authority: authority.to_string(),
        host: host.to_string(),
        port,
        prefix: path.trim_end_matches('/').to_string(),
    })
}

/// POSTs `question` to `path` on the server and gives the JSON of a 200 answer.
async fn post(server: &Server<'_>, path: &str, question: &Value) -> Result<Value, AskError> {
    let endpoint = server.endpoint;
    let t = target(endpoint).map_err(AskError::Unreachable)?;
    let path = format!("{}{path}", t.prefix);
    let body = question.to_string().into_bytes();
    let mut headers = HeaderMap::new();
    let value = |v: &str| {
        HeaderValue::from_str(v)
            .map_err(|_| AskError::Failed(format!("'{v}' cannot be sent in an HTTP header")))
    };
    headers.insert("host", value(&t.authority)?);
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(c) = server.credentials {
        let region = server.region.unwrap_or("us-east-1");
        let now = time::OffsetDateTime::now_utc();
        sign(&mut headers, &path, &body, region, c, now).map_err(AskError::Failed)?;
    }
    headers.insert(
        "user-agent",
        HeaderValue::from_static(concat!("kumori/", env!("CARGO_PKG_VERSION"))),
    );
    let mut request = Request::post(path.as_str())
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| AskError::Failed(format!("cannot ask {endpoint}{path}: {e}")))?;
    *request.headers_mut() = headers;

    let unreachable =
        |why: String| AskError::Unreachable(format!("no kumori answers at {endpoint}: {why}"));
    let stream = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((t.host.as_str(), t.port)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(unreachable(format!(
                "{e} (is one running there? `kumori serve` starts one; --endpoint-url or \
                 AWS_ENDPOINT_URL names another)"
            )));
        }
        Err(_) => {
            return Err(unreachable(format!(
                "no connection within {}s",
                CONNECT_TIMEOUT.as_secs()
            )));
        }
    };
    let exchange = async {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(connection);
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await;
        driver.abort();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, body?.to_bytes()))
    };
    let (status, body) = match tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {}s",
                ANSWER_TIMEOUT.as_secs()
            )));
        }
    };
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    if status.is_success() {
        return json.ok_or_else(|| {
            AskError::Failed(format!(
                "the server at {endpoint} answered {path} with what is not JSON: {}",
                excerpt(&body)
            ))
        });
    }
    // kumori's endpoints answer errors as {"code", "error"}; anything else is not kumori's
    // (or a kumori without these endpoints).
    match json
        .as_ref()
        .and_then(|j| Some((j["code"].as_str(), j["error"].as_str()?)))
    {
        Some((Some(code), message)) => Err(AskError::Failed(format!("{code}: {message}"))),
        Some((None, message)) => Err(AskError::Failed(message.to_string())),
        None => Err(AskError::Failed(format!(
            "the server at {endpoint} answered {path} with HTTP {status} (is it a kumori that \
             serves {path}?): {}",
            excerpt(&body)
        ))),
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Signs a POST of `body` to `path` with `headers` (Host among them) in SigV4's header form,
/// with the canonical request the server rebuilds (`kumori_protocol::sigv4`).
fn sign(
    headers: &mut HeaderMap,
    path: &str,
    body: &[u8],
    region: &str,
    c: &Credentials,
    now: time::OffsetDateTime,
) -> Result<(), String> {
    let value = |v: &str| {
        HeaderValue::from_str(v)
            .map_err(|_| "the credentials cannot be sent in an HTTP header".to_string())
    };
    let amz_date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    headers.insert("x-amz-date", value(&amz_date)?);
    if let Some(token) = &c.session_token {
        headers.insert("x-amz-security-token", value(token)?);
    }
    let mut signed_headers: Vec<String> = headers.keys().map(|n| n.as_str().to_string()).collect();
    signed_headers.sort();
    let scope_date = amz_date[..8].to_string();
    let sig = Signature {
        access_key: c.access_key.clone(),
        scope_date: scope_date.clone(),
        region: region.to_string(),
        service: SIGNING_SERVICE.to_string(),
        amz_date,
        signed_headers,
        signature: String::new(),
        session_token: c.session_token.clone(),
        expires: None,
    };
    let req = HttpRequest {
        method: "POST",
        path,
        query: "",
        headers,
        body,
    };
    let (_, string_to_sign) = sigv4::canonical(&req, &sig, false);
    let key = sigv4::signing_key(&c.secret, &scope_date, region, SIGNING_SERVICE);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    let signature = sigv4::hex(&mac.finalize().into_bytes());
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope_date}/{region}/{SIGNING_SERVICE}/aws4_request, \
         SignedHeaders={}, Signature={signature}",
        c.access_key,
        sig.signed_headers.join(";"),
    );
    headers.insert("authorization", value(&authorization)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_read_as_written() {
        let t = target("http://127.0.0.1:4566").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.host.as_str(), t.port),
            ("127.0.0.1:4566", "127.0.0.1", 4566)
        );
        assert_eq!(t.prefix, "");
        let t = target("http://localhost/kumori/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("localhost", 80, "/kumori")
        );
        let t = target("http://[::1]:4566/").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.host.as_str(), t.port),
            ("[::1]:4566", "::1", 4566)
        );
        assert!(
            target("https://127.0.0.1:4566")
                .unwrap_err()
                .contains("plain HTTP")
        );
        assert!(target("127.0.0.1:4566").is_err());
        assert!(target("http://:4566").is_err());
        assert!(target("http://host:port").is_err());
        assert!(target("http://user@host:1").is_err());
    }

    /// What `sign` writes is what the server's verifier accepts, and nothing else is.
    #[test]
    fn the_signature_is_what_the_server_checks() {
        let c = Credentials {
            access_key: "AKIAKUMORITESTKEY001".into(),
            secret: "secret/with+odd=chars".into(),
            session_token: Some("token==".into()),
        };
        let now = time::OffsetDateTime::now_utc();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:4566"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let body = br#"{"region":"eu-west-1"}"#;
        sign(&mut headers, AUDIT_PATH, body, "eu-west-1", &c, now).unwrap();
        fn req<'a>(body: &'a [u8], headers: &'a HeaderMap) -> HttpRequest<'a> {
            HttpRequest {
                method: "POST",
                path: AUDIT_PATH,
                query: "",
                headers,
                body,
            }
        }
        let headers = &headers;
        let sig = sigv4::parse(&req(body, headers)).unwrap();
        assert_eq!(
            (sig.region.as_str(), sig.service.as_str()),
            ("eu-west-1", "ec2")
        );
        assert_eq!(sig.session_token.as_deref(), Some("token=="));
        sigv4::verify(&req(body, headers), &sig, &c.secret, now, false).unwrap();
        assert!(
            sigv4::verify(
                &req(br#"{"region":"us-east-1"}"#, headers),
                &sig,
                &c.secret,
                now,
                false
            )
            .is_err()
        );
        assert!(sigv4::verify(&req(body, headers), &sig, "another secret", now, false).is_err());
    }
}
