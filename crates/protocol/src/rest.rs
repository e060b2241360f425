//! REST protocols: finding the operation from the method and the model's URI templates
//! (`/2013-04-01/hostedzone/{Id}`, `/{Bucket}/{Key+}?tagging`), and reading the members bound to
//! the URI, the query string and headers.

use crate::model::{Kind, Location, Model, Operation};
use http::HeaderMap;
use serde_json::{Map, Value};

/// A matched operation and the labels its template captured.
pub struct RestMatch<'m> {
    pub operation: &'m Operation,
    pub labels: Vec<(String, String)>,
}

/// Finds the operation whose method and URI template fit the request; the most specific
/// template (most literal segments and required query keys) wins.
pub fn match_operation<'m>(
    model: &'m Model,
    method: &str,
    path: &str,
    query: &[(String, String)],
) -> Option<RestMatch<'m>> {
    // botocore sends some paths with the model's trailing slash (`/hostedzone/Z1/rrset/`),
    // other SDKs (Go's, so Terraform) without it: either fits a template with one. Only as a
    // last resort, since a trailing slash can matter (an S3 key `folder/`).
    best_match(model, method, path, query, false)
        .or_else(|| match path.strip_suffix('/') {
            Some(trimmed) if !trimmed.is_empty() => {
                best_match(model, method, trimmed, query, false)
            }
            _ => None,
        })
        .or_else(|| best_match(model, method, path, query, true))
}

fn best_match<'m>(
    model: &'m Model,
    method: &str,
    path: &str,
    query: &[(String, String)],
    trim_template: bool,
) -> Option<RestMatch<'m>> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<(usize, RestMatch<'m>)> = None;
    for op in model.operations() {
        if op.http_method != method {
            continue;
        }
        let (tpath, tquery) = op
            .request_uri
            .split_once('?')
            .unwrap_or((&op.request_uri, ""));
        let tpath = match tpath.strip_suffix('/') {
            Some(t) if trim_template && !t.is_empty() => t,
            _ => tpath,
        };
        let mut score = 0;
        // Literal query keys in the template (`?tagging`, `?list-type=2`) must be present.
        let mut ok = true;
        for want in tquery.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = want.split_once('=').unwrap_or((want, ""));
            if !query
                .iter()
                .any(|(qk, qv)| qk == k && (v.is_empty() || qv == v))
            {
                ok = false;
            }
            score += 2;
        }
        // Members the operation requires in the query string (S3 ListParts' uploadId) too.
        if let Some(input) = op.input
            && let Kind::Structure { members } = &model.shape(input).kind
        {
            for m in members
                .iter()
                .filter(|m| m.required && m.location == Some(Location::Querystring))
            {
                let wire = m.location_name.as_deref().unwrap_or(&m.name);
                if query.iter().any(|(k, _)| k == wire) {
                    score += 1;
                } else {
                    ok = false;
                }
            }
        }
        if !ok {
            continue;
        }
        let Some((labels, literal)) = match_path(tpath, &segments) else {
            continue;
        };
        score += literal * 4;
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((
                score,
                RestMatch {
                    operation: op,
                    labels,
                },
            ));
        }
    }
    best.map(|(_, m)| m)
}

fn match_path(template: &str, segments: &[&str]) -> Option<(Vec<(String, String)>, usize)> {
    let tsegs: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let mut labels = Vec::new();
    let mut literal = 0;
    for (i, t) in tsegs.iter().enumerate() {
        if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            if let Some(greedy) = name.strip_suffix('+') {
                let rest = segments.get(i..)?.join("/");
                if rest.is_empty() {
                    return None;
                }
                labels.push((greedy.to_string(), decode(&rest)));
                return Some((labels, literal));
            }
            let seg = segments.get(i)?;
            if seg.is_empty() {
                return None;
            }
            labels.push((name.to_string(), decode(seg)));
        } else {
            if segments.get(i).copied().unwrap_or("") != *t {
                return None;
            }
            if !t.is_empty() {
                literal += 1;
            }
        }
    }
    (segments.len() == tsegs.len()).then_some((labels, literal))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Reads the members of the input shape bound to the URI, query string and headers.
pub fn bound_members(
    model: &Model,
    m: &RestMatch<'_>,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Value {
    let mut out = Map::new();
    let Some(input) = m.operation.input else {
        return Value::Object(out);
    };
    let Kind::Structure { members } = &model.shape(input).kind else {
        return Value::Object(out);
    };
    for member in members {
        let wire = member.location_name.as_deref().unwrap_or(&member.name);
        let raw = match member.location {
            Some(Location::Uri) => m
                .labels
                .iter()
                .find(|(k, _)| k == wire)
                .map(|(_, v)| v.clone()),
            Some(Location::Querystring) => query
                .iter()
                .find(|(k, _)| k == wire)
                .map(|(_, v)| v.clone()),
            Some(Location::Header) => headers
                .get(wire)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            _ => None,
        };
        if let Some(raw) = raw {
            out.insert(member.name.clone(), Value::String(raw));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;

    #[test]
    fn route53_and_s3_templates() {
        let r53 = service("route53").unwrap().model();
        let m = match_operation(r53, "GET", "/2013-04-01/hostedzone/Z123", &[]).unwrap();
        assert_eq!(m.operation.name, "GetHostedZone");
        assert_eq!(m.labels, vec![("Id".to_string(), "Z123".to_string())]);
        let m = match_operation(r53, "GET", "/2013-04-01/hostedzone/Z1/rrset", &[]).unwrap();
        assert_eq!(m.operation.name, "ListResourceRecordSets");
        let m = match_operation(r53, "POST", "/2013-04-01/hostedzone/Z1/rrset/", &[]).unwrap();
        assert_eq!(m.operation.name, "ChangeResourceRecordSets");
        // Go's SDK (Terraform's provider) leaves the model's trailing slash off.
        let m = match_operation(r53, "POST", "/2013-04-01/hostedzone/Z1/rrset", &[]).unwrap();
        assert_eq!(m.operation.name, "ChangeResourceRecordSets");
        assert_eq!(m.labels, vec![("Id".to_string(), "Z1".to_string())]);

        let s3 = service("s3").unwrap().model();
        let q = vec![("tagging".to_string(), String::new())];
        let m = match_operation(s3, "GET", "/bucket/a/b.txt", &q).unwrap();
        assert_eq!(m.operation.name, "GetObjectTagging");
        assert_eq!(m.labels[1], ("Key".to_string(), "a/b.txt".to_string()));
        assert_eq!(
            match_operation(s3, "PUT", "/bucket", &[])
                .unwrap()
                .operation
                .name,
            "CreateBucket"
        );
        assert_eq!(
            match_operation(s3, "GET", "/", &[]).unwrap().operation.name,
            "ListBuckets"
        );
    }
}
