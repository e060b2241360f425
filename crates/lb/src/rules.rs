//! ALB's listener rules, read from ELBv2's own shapes (`Field` with its config, `Type` with
//! its config) and evaluated as ALB evaluates them: rules in priority order, the first whose
//! conditions all match wins; within a condition any value matches; the default rule last.

use serde_json::Value;
use std::net::IpAddr;
use std::time::Duration;

/// One rule: every condition must match.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub conditions: Vec<Condition>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Case-sensitive, `*` and `?` wildcards, against the path without its query.
    Path(Vec<String>),
    /// Case-insensitive, wildcards, against the Host header without its port.
    Host(Vec<String>),
    /// Case-insensitive name; values case-insensitive with wildcards.
    Header {
        name: String,
        values: Vec<String>,
    },
    /// Exact and case-sensitive.
    Method(Vec<String>),
    /// Key (optional) and value pairs, case-insensitive with wildcards.
    Query(Vec<(Option<String>, String)>),
    SourceIp(Vec<ipnet::IpNet>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Target groups with their weights; group stickiness for how long, if on.
    Forward {
        groups: Vec<(String, u32)>,
        stickiness: Option<Duration>,
    },
    Redirect {
        protocol: String,
        port: String,
        host: String,
        path: String,
        query: String,
        status: u16,
    },
    Fixed {
        status: u16,
        content_type: Option<String>,
        body: String,
    },
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

impl Condition {
    /// A condition as ELBv2 stores it; `None` for a field this engine does not know.
    pub fn from_aws(c: &Value) -> Option<Condition> {
        let from = |config: &str| {
            let v = strings(&c[config]["Values"]);
            if v.is_empty() {
                strings(&c["Values"])
            } else {
                v
            }
        };
        Some(match c["Field"].as_str()? {
            "path-pattern" => Condition::Path(from("PathPatternConfig")),
            "host-header" => Condition::Host(from("HostHeaderConfig")),
            "http-header" => Condition::Header {
                name: c["HttpHeaderConfig"]["HttpHeaderName"]
                    .as_str()?
                    .to_string(),
                values: strings(&c["HttpHeaderConfig"]["Values"]),
            },
            "http-request-method" => Condition::Method(from("HttpRequestMethodConfig")),
            "query-string" => Condition::Query(
                c["QueryStringConfig"]["Values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|kv| {
                        (
                            kv["Key"].as_str().map(str::to_string),
                            kv["Value"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
            ),
            "source-ip" => Condition::SourceIp(
                from("SourceIpConfig")
                    .iter()
                    .filter_map(|s| s.parse().ok())
                    .collect(),
            ),
            _ => return None,
        })
    }
}

impl Action {
    /// The terminal action of a rule's actions as ELBv2 stores them.
    pub fn from_aws(actions: &[Value]) -> Option<Action> {
        let a = actions.iter().find(|a| {
            matches!(
                a["Type"].as_str(),
                Some("forward" | "redirect" | "fixed-response")
            )
        })?;
        Some(match a["Type"].as_str()? {
            "forward" => {
                let mut groups: Vec<(String, u32)> = a["ForwardConfig"]["TargetGroups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| {
                        Some((
                            t["TargetGroupArn"].as_str()?.to_string(),
                            t["Weight"].as_u64().unwrap_or(1) as u32,
                        ))
                    })
                    .collect();
                if groups.is_empty() {
                    groups.push((a["TargetGroupArn"].as_str()?.to_string(), 1));
                }
                let s = &a["ForwardConfig"]["TargetGroupStickinessConfig"];
                let stickiness = (s["Enabled"].as_bool() == Some(true))
                    .then(|| Duration::from_secs(s["DurationSeconds"].as_u64().unwrap_or(3600)));
                Action::Forward { groups, stickiness }
            }
            "redirect" => {
                let r = &a["RedirectConfig"];
                let part = |k: &str, d: &str| r[k].as_str().unwrap_or(d).to_string();
                Action::Redirect {
                    protocol: part("Protocol", "#{protocol}"),
                    port: part("Port", "#{port}"),
                    host: part("Host", "#{host}"),
                    path: part("Path", "/#{path}"),
                    query: part("Query", "#{query}"),
                    status: if r["StatusCode"] == "HTTP_301" {
                        301
                    } else {
                        302
                    },
                }
            }
            _ => {
                let f = &a["FixedResponseConfig"];
                Action::Fixed {
                    status: f["StatusCode"].as_str()?.parse().ok()?,
                    content_type: f["ContentType"].as_str().map(str::to_string),
                    body: f["MessageBody"].as_str().unwrap_or_default().to_string(),
                }
            }
        })
    }
}

impl Rule {
    /// A rule from ELBv2's conditions and actions; `None` if it has no action this engine
    /// can carry out (it is then skipped, as a rule that never matches).
    pub fn from_aws(conditions: &[Value], actions: &[Value]) -> Option<Rule> {
        Some(Rule {
            conditions: conditions
                .iter()
                .map(Condition::from_aws)
                .collect::<Option<_>>()?,
            action: Action::from_aws(actions)?,
        })
    }
}

/// What a rule looks at in a request.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub host: &'a str,
    pub headers: &'a hyper::HeaderMap,
    pub source: IpAddr,
}

/// `*` matches any run of characters, `?` any one.
pub fn wildcard(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if ignore_case {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (p, t) = (fold(pattern), fold(text));
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

impl Condition {
    pub fn matches(&self, r: &Request<'_>) -> bool {
        match self {
            Condition::Path(v) => v.iter().any(|p| wildcard(p, r.path, false)),
            Condition::Host(v) => {
                let host = r.host.rsplit_once(':').map_or(r.host, |(h, port)| {
                    if port.chars().all(|c| c.is_ascii_digit()) {
                        h
                    } else {
                        r.host
                    }
                });
                v.iter().any(|p| wildcard(p, host, true))
            }
            Condition::Header { name, values } => {
                r.headers.get_all(name.as_str()).iter().any(|h| {
                    let h = h.to_str().unwrap_or_default();
                    values.iter().any(|p| wildcard(p, h, true))
                })
            }
            Condition::Method(v) => v.iter().any(|m| m == r.method),
            Condition::Query(pairs) => {
                let given: Vec<(String, String)> = r
                    .query
                    .split('&')
                    .filter(|s| !s.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        (decode(k), decode(v))
                    })
                    .collect();
                pairs.iter().any(|(k, v)| {
                    given.iter().any(|(gk, gv)| {
                        k.as_ref().is_none_or(|k| wildcard(k, gk, true)) && wildcard(v, gv, true)
                    })
                })
            }
            Condition::SourceIp(nets) => {
                let ip = match r.source {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(r.source, IpAddr::V4),
                    v4 => v4,
                };
                nets.iter().any(|n| n.contains(&ip))
            }
        }
    }
}

/// The action of the first rule whose conditions all match.
pub fn choose<'a>(rules: &'a [Rule], r: &Request<'_>) -> Option<&'a Action> {
    rules
        .iter()
        .find(|rule| rule.conditions.iter().all(|c| c.matches(r)))
        .map(|rule| &rule.action)
}

/// A redirect's target: its parts with `#{…}` replaced by the request's own.
pub fn redirect_location(
    action: &Action,
    protocol: &str,
    port: u16,
    host: &str,
    path: &str,
    query: &str,
) -> Option<String> {
    let Action::Redirect {
        protocol: p,
        port: po,
        host: h,
        path: pa,
        query: q,
        ..
    } = action
    else {
        return None;
    };
    let host_only = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let fill = |s: &str| {
        s.replace("#{protocol}", &protocol.to_lowercase())
            .replace("#{port}", &port.to_string())
            .replace("#{host}", host_only)
            .replace("#{path}", path.trim_start_matches('/'))
            .replace("#{query}", query)
    };
    let proto = fill(p).to_lowercase();
    let port_s = fill(po);
    let default_port = matches!(
        (proto.as_str(), port_s.as_str()),
        ("http", "80") | ("https", "443")
    );
    let mut url = format!("{proto}://{}", fill(h));
    if !default_port {
        url.push(':');
        url.push_str(&port_s);
    }
    let path = fill(pa);
    if !path.starts_with('/') {
        url.push('/');
    }
    url.push_str(&path);
    let q = fill(q);
    if !q.is_empty() {
        url.push('?');
        url.push_str(&q);
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req<'a>(headers: &'a hyper::HeaderMap, path: &'a str, query: &'a str) -> Request<'a> {
        Request {
            method: "GET",
            path,
            query,
            host: "shop.example.com:8080",
            headers,
            source: "10.0.1.7".parse().unwrap(),
        }
    }

    #[test]
    fn wildcards_match_as_alb_documents_them() {
        assert!(wildcard("/api/*", "/api/v1/users", false));
        assert!(wildcard("/img/*.png", "/img/a/b.png", false));
        assert!(!wildcard("/API/*", "/api/x", false));
        assert!(wildcard("*.example.com", "Shop.Example.com", true));
        assert!(wildcard("/a?c", "/abc", false));
        assert!(!wildcard("/a?c", "/ac", false));
        assert!(wildcard("*", "", false));
    }

    #[test]
    fn the_first_matching_rule_in_priority_order_wins() {
        let fwd = |g: &str| json!([{ "Type": "forward", "TargetGroupArn": g }]);
        let rules = vec![
            Rule::from_aws(
                &[json!({ "Field": "path-pattern", "PathPatternConfig": { "Values": ["/api/*"] } }),
                  json!({ "Field": "host-header", "Values": ["*.example.com"] })],
                fwd("api").as_array().unwrap(),
            )
            .unwrap(),
            Rule::from_aws(
                &[json!({ "Field": "query-string", "QueryStringConfig": { "Values": [{ "Key": "v", "Value": "2*" }] } })],
                fwd("v2").as_array().unwrap(),
            )
            .unwrap(),
            Rule::from_aws(
                &[json!({ "Field": "source-ip", "SourceIpConfig": { "Values": ["192.168.0.0/16"] } })],
                fwd("office").as_array().unwrap(),
            )
            .unwrap(),
            Rule::from_aws(&[], fwd("default").as_array().unwrap()).unwrap(),
        ];
        let h = hyper::HeaderMap::new();
        let group = |r: &Request<'_>| match choose(&rules, r) {
            Some(Action::Forward { groups, .. }) => groups[0].0.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(group(&req(&h, "/api/users", "")), "api");
        assert_eq!(group(&req(&h, "/shop", "a=1&v=2024")), "v2");
        assert_eq!(group(&req(&h, "/shop", "v=1")), "default");
        let mut office = req(&h, "/", "");
        office.source = "192.168.3.4".parse().unwrap();
        assert_eq!(group(&office), "office");
    }

    #[test]
    fn redirects_fill_in_the_request() {
        let a = Action::from_aws(&[json!({
            "Type": "redirect",
            "RedirectConfig": { "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301" }
        })])
        .unwrap();
        assert_eq!(
            redirect_location(&a, "http", 80, "shop.example.com", "/cart", "id=3").unwrap(),
            "https://shop.example.com/cart?id=3"
        );
    }
}
