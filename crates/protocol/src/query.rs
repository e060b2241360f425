//! Form-encoded input (`Action=...&Filter.1.Name=...`) of the ec2 and awsQuery protocols, read
//! into a JSON value keyed by the model's member names, and validated against the model.
//!
//! The keys are first folded into a trie on `.`; the walker then consumes the trie guided by
//! the input shape, so list indexes may be sparse or out of order, as botocore allows.

use crate::error::AwsError;
use crate::model::{Kind, Member, Model, Protocol, Shape, ShapeId};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// EC2 enum shapes whose values EC2 accepts in any case; every other enum must match exactly.
const CASE_FREE_ENUMS: &[&str] = &["RuleAction"];
/// EC2 enum shapes whose values EC2 does not check at all: AllocateAddress with an empty or
/// unknown `Domain` makes a VPC address, the only kind left since EC2-Classic ended.
const UNCHECKED_ENUMS: &[&str] = &["DomainType"];

/// How deep a parameter name may nest (`A.1.B.2.C` is five). The deepest name any vendored
/// model asks for is far shallower; the limit keeps a hostile name from building a trie whose
/// walk and drop would recurse without bound.
pub const MAX_KEY_DEPTH: usize = 32;
/// How many parameters one request may carry. EC2's longest lists (ids, tags, filter
/// values) stay in the low thousands; the body cap (2 MiB) alone would allow ~500,000.
pub const MAX_PARAMS: usize = 20_000;

/// One node of the parameter trie.
#[derive(Debug, Default)]
pub struct Node {
    pub value: Option<String>,
    pub children: BTreeMap<String, Node>,
}

/// Drops a trie with a loop rather than recursion, so no shape of input can exhaust the stack
/// when it is freed (depth is bounded on the way in too; this is the second wall).
impl Drop for Node {
    fn drop(&mut self) {
        let mut pending: Vec<BTreeMap<String, Node>> = vec![std::mem::take(&mut self.children)];
        while let Some(map) = pending.pop() {
            for (_, mut child) in map {
                if !child.children.is_empty() {
                    pending.push(std::mem::take(&mut child.children));
                }
            }
        }
    }
}

impl Node {
    /// Builds the trie from decoded key/value pairs. `Action` and `Version` stay as plain
    /// top-level children; the caller reads them before walking. Refuses more than
    /// [`MAX_PARAMS`] pairs or a name deeper than [`MAX_KEY_DEPTH`], as AWS refuses a
    /// malformed query string.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Node, AwsError> {
        let mut root = Node::default();
        for (n, (key, value)) in pairs.into_iter().enumerate() {
            if n >= MAX_PARAMS {
                return Err(malformed_query(format!(
                    "The request has more than {MAX_PARAMS} parameters."
                )));
            }
            if key.split('.').nth(MAX_KEY_DEPTH).is_some() {
                let shown: String = key.chars().take(64).collect();
                return Err(malformed_query(format!(
                    "The parameter name {shown}... nests deeper than {MAX_KEY_DEPTH} levels."
                )));
            }
            let mut node = &mut root;
            for part in key.split('.') {
                node = node.children.entry(part.to_string()).or_default();
            }
            node.value = Some(value.to_string());
        }
        Ok(root)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.children.get(key).and_then(|n| n.value.as_deref())
    }

    /// Children keyed by positive integers, in index order (lists are 1-based on the wire).
    fn indexed(&self) -> Vec<&Node> {
        let mut items: Vec<(u32, &Node)> = self
            .children
            .iter()
            .filter_map(|(k, n)| k.parse::<u32>().ok().filter(|i| *i > 0).map(|i| (i, n)))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, n)| n).collect()
    }
}

/// AWS's common error for a query string it cannot take apart (its documented status, 404).
fn malformed_query(message: String) -> AwsError {
    AwsError::new("MalformedQueryString", message).with_status(404)
}

/// Reads the input of an operation whose input shape is `shape` from `root`.
pub fn parse_input(model: &Model, shape: ShapeId, root: &Node) -> Result<Value, AwsError> {
    let walker = Walker {
        model,
        ec2: model.protocol == Protocol::Ec2,
        violations: std::cell::RefCell::new(Vec::new()),
    };
    let value = walker.structure(model.shape(shape), root, "")?;
    // Query services (IAM, STS) list every constraint a request breaks in one message.
    let violations = walker.violations.take();
    if !violations.is_empty() {
        let n = violations.len();
        let noun = if n == 1 { "error" } else { "errors" };
        return Err(AwsError::new(
            "ValidationError",
            format!("{n} validation {noun} detected: {}", violations.join("; ")),
        ));
    }
    if walker.ec2 {
        // EC2 refuses parameters it does not know; query services ignore them.
        let Kind::Structure { members } = &model.shape(shape).kind else {
            unreachable!()
        };
        for key in root.children.keys() {
            if key == "Action" || key == "Version" || key.starts_with("X-Amz-") {
                continue;
            }
            if !members.iter().any(|m| walker.wire_name(m) == *key) {
                return Err(AwsError::new(
                    "UnknownParameter",
                    format!("The parameter {key} is not recognized"),
                ));
            }
        }
    }
    Ok(value)
}

struct Walker<'m> {
    model: &'m Model,
    ec2: bool,
    /// Constraints broken so far, for query services, which report them all at once.
    violations: std::cell::RefCell<Vec<String>>,
}

/// `maxResults` from `MaxResults`: the name AWS uses in its validation messages.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl<'m> Walker<'m> {
    /// The key a member travels under, as botocore's serializers compute it.
    fn wire_name(&self, m: &Member) -> String {
        if self.ec2 {
            if let Some(q) = &m.query_name {
                return q.clone();
            }
            if let Some(l) = &m.location_name {
                return upper_first(l);
            }
            m.name.clone()
        } else {
            m.location_name.clone().unwrap_or_else(|| m.name.clone())
        }
    }

    fn missing(&self, path: &str, wire: &str) -> AwsError {
        if self.ec2 {
            AwsError::new(
                "MissingParameter",
                format!("The request must contain the parameter {wire}"),
            )
        } else {
            AwsError::new(
                "ValidationError",
                format!(
                    "1 validation error detected: Value null at '{path}' failed to satisfy \
                     constraint: Member must not be null"
                ),
            )
        }
    }

    /// An invalid value: EC2 names the parameter, query services the path and constraint.
    fn invalid(&self, path: &str, value: &str, constraint: &str) -> AwsError {
        if self.ec2 {
            AwsError::new(
                "InvalidParameterValue",
                format!("Value ({value}) for parameter {path} is invalid. {constraint}"),
            )
        } else {
            AwsError::new(
                "ValidationError",
                format!(
                    "1 validation error detected: Value '{value}' at '{path}' failed to satisfy \
                     constraint: {constraint}"
                ),
            )
        }
    }

    /// A value breaking a range, length or enum constraint: EC2 answers at once; a query
    /// service notes it and goes on, to answer with every one.
    fn violate(&self, path: &str, value: &str, constraint: &str) -> Result<(), AwsError> {
        if self.ec2 {
            return Err(self.invalid(path, value, constraint));
        }
        self.violations.borrow_mut().push(format!(
            "Value '{value}' at '{path}' failed to satisfy constraint: {constraint}"
        ));
        Ok(())
    }

    fn structure(&self, shape: &Shape, node: &Node, path: &str) -> Result<Value, AwsError> {
        let Kind::Structure { members } = &shape.kind else {
            return Err(AwsError::internal(format!(
                "{} is not a structure",
                shape.name
            )));
        };
        let mut out = Map::new();
        for m in members {
            let wire = self.wire_name(m);
            let child_path = if path.is_empty() {
                lower_first(&m.location_name.clone().unwrap_or_else(|| m.name.clone()))
            } else {
                format!("{path}.{}", lower_first(&m.name))
            };
            match node.children.get(&wire) {
                Some(child) => {
                    let v = self.value(m, child, &child_path)?;
                    out.insert(m.name.clone(), v);
                }
                None if m.required => return Err(self.missing(&child_path, &wire)),
                None => {}
            }
        }
        Ok(Value::Object(out))
    }

    fn value(&self, member: &Member, node: &Node, path: &str) -> Result<Value, AwsError> {
        let shape = self.model.shape(member.shape);
        match &shape.kind {
            Kind::Structure { .. } => self.structure(shape, node, path),
            Kind::List { member: item } => {
                // ec2 lists are always `Name.N`; query lists `Name.member.N` unless flattened.
                let items_node = if self.ec2 || shape.flattened || member.flattened {
                    Some(node)
                } else {
                    let inner = item.location_name.as_deref().unwrap_or("member");
                    node.children.get(inner)
                };
                let mut items = Vec::new();
                if let Some(n) = items_node {
                    for (i, child) in n.indexed().into_iter().enumerate() {
                        items.push(self.value(item, child, &format!("{path}.{}", i + 1))?);
                    }
                }
                self.check_length(shape, items.len(), path, &format!("{} items", items.len()))?;
                Ok(Value::Array(items))
            }
            Kind::Map { key, value } => {
                let entries = if shape.flattened {
                    Some(node)
                } else {
                    node.children.get("entry")
                };
                let kname = key.location_name.as_deref().unwrap_or("key");
                let vname = value.location_name.as_deref().unwrap_or("value");
                let mut out = Map::new();
                if let Some(e) = entries {
                    for entry in e.indexed() {
                        let k = entry.get(kname).unwrap_or_default().to_string();
                        let v = match entry.children.get(vname) {
                            Some(n) => self.value(value, n, &format!("{path}.{k}"))?,
                            None => Value::Null,
                        };
                        out.insert(k, v);
                    }
                }
                Ok(Value::Object(out))
            }
            _ => {
                let raw = node.value.as_deref().unwrap_or("");
                self.scalar(shape, raw, path)
            }
        }
    }

    fn check_length(
        &self,
        shape: &Shape,
        len: usize,
        path: &str,
        shown: &str,
    ) -> Result<(), AwsError> {
        if let Some(min) = shape.min
            && (len as f64) < min
        {
            let c = format!("Member must have length greater than or equal to {min}");
            self.violate(path, shown, &c)?;
        }
        if let Some(max) = shape.max
            && (len as f64) > max
        {
            let c = format!("Member must have length less than or equal to {max}");
            self.violate(path, shown, &c)?;
        }
        Ok(())
    }

    fn scalar(&self, shape: &Shape, raw: &str, path: &str) -> Result<Value, AwsError> {
        match shape.kind {
            Kind::String => {
                // EC2 takes these enums in any case and answers with the model's spelling
                // (a network ACL's `RuleAction` of `ALLOW` is shown as `allow`).
                if self.ec2
                    && CASE_FREE_ENUMS.contains(&shape.name.as_str())
                    && let Some(v) = shape
                        .enum_values
                        .iter()
                        .flatten()
                        .find(|v| v.eq_ignore_ascii_case(raw))
                {
                    return Ok(Value::String(v.clone()));
                }
                if let Some(values) = &shape.enum_values
                    && !values.iter().any(|v| v == raw)
                    && !(self.ec2 && UNCHECKED_ENUMS.contains(&shape.name.as_str()))
                {
                    let c = if self.ec2 {
                        format!("Valid values: {}", values.join(", "))
                    } else {
                        format!(
                            "Member must satisfy enum value set: [{}]",
                            values.join(", ")
                        )
                    };
                    self.violate(path, raw, &c)?;
                }
                self.check_length(shape, raw.chars().count(), path, raw)?;
                Ok(Value::String(raw.to_string()))
            }
            Kind::Integer | Kind::Long => {
                let n: i64 = raw.trim().parse().map_err(|_| {
                    let c = if self.ec2 {
                        "Expected an integer.".into()
                    } else {
                        "Member must be a number".to_string()
                    };
                    self.invalid(path, raw, &c)
                })?;
                if let Some(min) = shape.min
                    && (n as f64) < min
                {
                    let c = if self.ec2 {
                        format!("Expecting a value greater than or equal to {min}.")
                    } else {
                        format!("Member must have value greater than or equal to {min}")
                    };
                    self.violate(path, raw, &c)?;
                }
                if let Some(max) = shape.max
                    && (n as f64) > max
                {
                    let c = if self.ec2 {
                        format!("Expecting a value less than or equal to {max}.")
                    } else {
                        format!("Member must have value less than or equal to {max}")
                    };
                    self.violate(path, raw, &c)?;
                }
                Ok(Value::from(n))
            }
            Kind::Float | Kind::Double => {
                let n: f64 = raw
                    .trim()
                    .parse()
                    .map_err(|_| self.invalid(path, raw, "Expected a number."))?;
                Ok(serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null))
            }
            Kind::Boolean => match raw.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(self.invalid(path, raw, "Expected a boolean (true or false).")),
            },
            Kind::Timestamp => crate::time::parse_timestamp(raw)
                .map(Value::String)
                .ok_or_else(|| self.invalid(path, raw, "Expected an ISO 8601 timestamp.")),
            // Blobs stay base64 text; the handler decodes what it needs.
            Kind::Blob => Ok(Value::String(raw.to_string())),
            _ => Err(AwsError::internal(format!(
                "{} is not a scalar",
                shape.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;

    fn parse(svc: &str, op: &str, q: &str) -> Result<Value, AwsError> {
        let model = service(svc).unwrap().model();
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        let root = Node::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        parse_input(model, model.operation(op).unwrap().input.unwrap(), &root)
    }

    #[test]
    fn ec2_lists_filters_and_scalars() {
        let v = parse(
            "ec2",
            "DescribeVpcs",
            "Action=DescribeVpcs&Filter.2.Name=state&Filter.2.Value.1=available&Filter.1.Name=tag%3AEnv\
             &Filter.1.Value.1=a&Filter.1.Value.2=b&VpcId.1=vpc-1&MaxResults=10&DryRun=true",
        )
        .unwrap();
        assert_eq!(v["Filters"][0]["Name"], "tag:Env");
        assert_eq!(v["Filters"][0]["Values"], serde_json::json!(["a", "b"]));
        assert_eq!(v["Filters"][1]["Values"][0], "available");
        assert_eq!(v["VpcIds"][0], "vpc-1");
        assert_eq!(v["MaxResults"], 10);
        assert_eq!(v["DryRun"], true);
    }

    #[test]
    fn ec2_range_and_unknown_parameter() {
        let e = parse("ec2", "DescribeVpcs", "MaxResults=2").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert!(e.message.contains("maxResults"), "{}", e.message);
        let e = parse("ec2", "DescribeVpcs", "Bogus=1").unwrap_err();
        assert_eq!(e.code, "UnknownParameter");
        let e = parse("ec2", "DeleteVpc", "").unwrap_err();
        assert_eq!(e.code, "MissingParameter");
        assert!(e.message.contains("VpcId"));
    }

    #[test]
    fn query_member_lists_and_validation() {
        let v = parse(
            "iam",
            "TagUser",
            "UserName=bob&Tags.member.1.Key=k&Tags.member.1.Value=v",
        )
        .unwrap();
        assert_eq!(v["Tags"][0]["Key"], "k");
        let e = parse("iam", "GetUser", "UserName=").unwrap_err();
        assert_eq!(e.code, "ValidationError");
        let e = parse("iam", "CreateUser", "").unwrap_err();
        assert!(e.message.contains("'userName'"), "{}", e.message);
    }
}
