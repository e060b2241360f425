//! Output of the XML protocols (ec2, awsQuery, rest-xml), written from a JSON value keyed by the
//! model's member names. Element names, list wrapping and flattening come from the model only.

use crate::model::{Kind, Member, Model, Protocol, ShapeId};
use serde_json::Value;
use std::fmt::Write;

/// Escapes text for XML element content and attribute values.
/// Characters XML 1.0 cannot carry at all (C0 controls other than tab, line feed and
/// carriage return; U+FFFE and U+FFFF) become U+FFFD, so that an answer quoting or storing
/// one is still a document every SDK can read.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    let forbidden = |c: char| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    };
    if s.contains(forbidden) {
        let cleaned: String = s
            .chars()
            .map(|c| if forbidden(c) { '\u{FFFD}' } else { c })
            .collect();
        return std::borrow::Cow::Owned(quick_xml::escape::escape(&cleaned).into_owned());
    }
    quick_xml::escape::escape(s)
}

/// The complete response document of an ec2 or awsQuery operation.
pub fn response_document(
    model: &Model,
    operation: &str,
    output_shape: Option<ShapeId>,
    result_wrapper: Option<&str>,
    output: &crate::Output,
    request_id: &str,
) -> Result<String, crate::AwsError> {
    let mut out = String::with_capacity(1024);
    let ns = escape(&model.xml_namespace);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{operation}Response xmlns=\"{ns}\">"
    );
    match model.protocol {
        Protocol::Ec2 => {
            let _ = write!(out, "<requestId>{request_id}</requestId>");
            if let Some(shape) = output_shape {
                output.write_xml_members(model, shape, &mut out)?;
            }
        }
        _ => {
            if let Some(shape) = output_shape {
                let wrapper = result_wrapper
                    .map(str::to_string)
                    .unwrap_or(format!("{operation}Result"));
                let _ = write!(out, "<{wrapper}>");
                output.write_xml_members(model, shape, &mut out)?;
                let _ = write!(out, "</{wrapper}>");
            }
            let _ = write!(
                out,
                "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            );
        }
    }
    let _ = write!(out, "</{operation}Response>");
    Ok(out)
}

/// Writes the members of structure `shape` present in `value`, in model order.
pub fn write_members(model: &Model, shape: ShapeId, value: &Value, out: &mut String) {
    let Kind::Structure { members } = &model.shape(shape).kind else {
        return;
    };
    let Some(obj) = value.as_object() else { return };
    for m in members {
        if let Some(v) = obj.get(&m.name) {
            if v.is_null() || m.location.is_some() {
                continue;
            }
            let name = m.location_name.as_deref().unwrap_or(&m.name);
            write_member(model, m, name, v, out);
        }
    }
}

fn write_member(model: &Model, m: &Member, name: &str, v: &Value, out: &mut String) {
    let shape = model.shape(m.shape);
    match &shape.kind {
        Kind::Structure { .. } => {
            let _ = write!(out, "<{name}>");
            write_members(model, m.shape, v, out);
            let _ = write!(out, "</{name}>");
        }
        Kind::List { member: item } => {
            let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
            if shape.flattened || m.flattened {
                let item_name = item.location_name.as_deref().unwrap_or(name);
                for it in items {
                    write_member(model, item, item_name, it, out);
                }
            } else {
                let item_name = item.location_name.as_deref().unwrap_or("member");
                let _ = write!(out, "<{name}>");
                for it in items {
                    write_member(model, item, item_name, it, out);
                }
                let _ = write!(out, "</{name}>");
            }
        }
        Kind::Map { key, value } => {
            let kname = key.location_name.as_deref().unwrap_or("key");
            let vname = value.location_name.as_deref().unwrap_or("value");
            let flat = shape.flattened || m.flattened;
            if !flat {
                let _ = write!(out, "<{name}>");
            }
            for (k, val) in v.as_object().into_iter().flatten() {
                let entry = if flat { name } else { "entry" };
                let _ = write!(out, "<{entry}><{kname}>{}</{kname}>", escape(k));
                write_member(model, value, vname, val, out);
                let _ = write!(out, "</{entry}>");
            }
            if !flat {
                let _ = write!(out, "</{name}>");
            }
        }
        Kind::Timestamp => {
            let text = crate::time::format_timestamp(v);
            let _ = write!(out, "<{name}>{}</{name}>", escape(&text));
        }
        _ => {
            let text = scalar_text(v);
            let _ = write!(out, "<{name}>{}</{name}>", escape(&text));
        }
    }
}

/// A scalar's text; borrowed for strings, which are most of what responses hold.
pub(crate) fn scalar_text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::String(s) => std::borrow::Cow::Borrowed(s),
        Value::Bool(b) => b.to_string().into(),
        Value::Number(n) => n.to_string().into(),
        other => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;
    use serde_json::json;

    #[test]
    fn characters_xml_cannot_carry_are_replaced() {
        assert_eq!(
            escape("a\u{0}b<\u{1b}\t\u{FFFF}"),
            "a\u{FFFD}b&lt;\u{FFFD}\t\u{FFFD}"
        );
        assert!(matches!(escape("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn ec2_output_uses_location_names_and_items() {
        let m = service("ec2").unwrap().model();
        let op = m.operation("DescribeVpcs").unwrap();
        let v = json!({"Vpcs": [{"VpcId": "vpc-1", "IsDefault": false,
            "Tags": [{"Key": "Name", "Value": "a<b"}]}]});
        let doc = response_document(m, "DescribeVpcs", op.output, None, &v.into(), "rid").unwrap();
        assert!(doc.contains("<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>rid</requestId>"));
        assert!(
            doc.contains("<vpcSet><item><isDefault>false</isDefault>"),
            "{doc}"
        );
        assert!(
            doc.contains("<tagSet><item><key>Name</key><value>a&lt;b</value></item></tagSet>"),
            "{doc}"
        );
    }

    #[test]
    fn query_output_has_result_wrapper_and_members() {
        let m = service("iam").unwrap().model();
        let op = m.operation("ListUsers").unwrap();
        let v = json!({"Users": [{"UserName": "bob", "CreateDate": "2026-01-02T03:04:05Z"}], "IsTruncated": false});
        let doc = response_document(
            m,
            "ListUsers",
            op.output,
            op.result_wrapper.as_deref(),
            &v.into(),
            "rid",
        )
        .unwrap();
        assert!(
            doc.contains("<ListUsersResult><Users><member><UserName>bob</UserName>"),
            "{doc}"
        );
        assert!(
            doc.contains("<CreateDate>2026-01-02T03:04:05Z</CreateDate>"),
            "{doc}"
        );
        assert!(doc.ends_with(
            "<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></ListUsersResponse>"
        ));
    }
}

/// An XML element read from a request body.
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

/// Frees a tree with a loop rather than recursion: no document can exhaust the stack when
/// it is dropped (depth is bounded while parsing too; this is the second wall).
impl Drop for Element {
    fn drop(&mut self) {
        let mut pending: Vec<Element> = std::mem::take(&mut self.children);
        while let Some(mut e) = pending.pop() {
            pending.append(&mut e.children);
        }
    }
}

/// How deep a request document may nest. Route 53's change batches, the deepest bodies of
/// the vendored rest-xml models, are under ten levels.
pub const MAX_DEPTH: usize = 64;
/// How many elements a request document may hold.
pub const MAX_ELEMENTS: usize = 100_000;

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Reads an XML document into its root element (namespaces prefixes are dropped).
pub fn parse_document(body: &[u8]) -> Result<Element, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut buf = Vec::new();
    let mut elements = 0usize;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| e.to_string())?;
        if matches!(event, Event::Start(_) | Event::Empty(_)) {
            elements += 1;
            if elements > MAX_ELEMENTS {
                return Err(format!(
                    "the document has more than {MAX_ELEMENTS} elements"
                ));
            }
            if stack.len() > MAX_DEPTH {
                return Err(format!(
                    "the document nests deeper than {MAX_DEPTH} elements"
                ));
            }
        }
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                stack.push(Element {
                    name,
                    text: String::new(),
                    children: Vec::new(),
                });
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_string();
                let parent = stack.last_mut().ok_or("unbalanced XML")?;
                parent.children.push(Element {
                    name,
                    text: String::new(),
                    children: Vec::new(),
                });
            }
            Event::End(_) => {
                let done = stack.pop().ok_or("unbalanced XML")?;
                stack
                    .last_mut()
                    .ok_or("unbalanced XML")?
                    .children
                    .push(done);
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                let text = quick_xml::escape::unescape(&text).map_err(|e| e.to_string())?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let text = quick_xml::escape::unescape(&format!("&{name};"))
                    .map_err(|e| e.to_string())?
                    .into_owned();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c.xml10_content());
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let mut root = stack.pop().ok_or("empty XML")?;
    if !stack.is_empty() || root.children.len() != 1 {
        return Err("the body must hold exactly one XML document element".into());
    }
    Ok(root.children.remove(0))
}

/// Reads the members of structure `shape` from `el`, guided by the model. Scalars keep their
/// text form for strings and become numbers and booleans where the shape says so.
pub fn read_members(model: &Model, shape: ShapeId, el: &Element) -> Result<Value, String> {
    let Kind::Structure { members } = &model.shape(shape).kind else {
        return read_value(model, shape, el);
    };
    let mut out = serde_json::Map::new();
    for m in members.iter().filter(|m| m.location.is_none()) {
        let name = m.location_name.as_deref().unwrap_or(&m.name);
        let s = model.shape(m.shape);
        let v = match &s.kind {
            Kind::List { member: item } if s.flattened || m.flattened => {
                let items: Vec<Value> = el
                    .children
                    .iter()
                    .filter(|c| c.name == name)
                    .map(|c| read_value(model, item.shape, c))
                    .collect::<Result<_, _>>()?;
                if items.is_empty() {
                    continue;
                }
                Value::Array(items)
            }
            _ => match el.child(name) {
                Some(c) => read_value(model, m.shape, c)?,
                None => continue,
            },
        };
        out.insert(m.name.clone(), v);
    }
    Ok(Value::Object(out))
}

fn read_value(model: &Model, shape: ShapeId, el: &Element) -> Result<Value, String> {
    let s = model.shape(shape);
    let text = el.text.trim();
    Ok(match &s.kind {
        Kind::Structure { .. } => read_members(model, shape, el)?,
        Kind::List { member } => {
            let item_name = member.location_name.as_deref().unwrap_or("member");
            Value::Array(
                el.children
                    .iter()
                    .filter(|c| c.name == item_name)
                    .map(|c| read_value(model, member.shape, c))
                    .collect::<Result<_, _>>()?,
            )
        }
        Kind::Map { key, value } => {
            let (kname, vname) = (
                key.location_name.as_deref().unwrap_or("key"),
                value.location_name.as_deref().unwrap_or("value"),
            );
            let mut map = serde_json::Map::new();
            for entry in el.children.iter().filter(|c| c.name == "entry") {
                let k = entry
                    .child(kname)
                    .map(|c| c.text.clone())
                    .unwrap_or_default();
                let v = match entry.child(vname) {
                    Some(c) => read_value(model, value.shape, c)?,
                    None => Value::Null,
                };
                map.insert(k, v);
            }
            Value::Object(map)
        }
        Kind::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => return Err(format!("'{other}' is not a boolean for {}", el.name)),
        },
        Kind::Integer | Kind::Long => Value::from(
            text.parse::<i64>()
                .map_err(|_| format!("'{text}' is not an integer for {}", el.name))?,
        ),
        Kind::Float | Kind::Double => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("'{text}' is not a number for {}", el.name))?,
        Kind::Timestamp => Value::String(
            crate::time::parse_timestamp(text)
                .ok_or_else(|| format!("'{text}' is not a timestamp for {}", el.name))?,
        ),
        _ => Value::String(el.text.clone()),
    })
}

#[cfg(test)]
mod input_tests {
    use super::*;
    use crate::model::service;

    #[test]
    fn route53_change_batch_body() {
        // Exactly what botocore's rest-xml serializer sends for ChangeResourceRecordSets.
        let body = br#"<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Comment>a &amp; b</Comment><Changes><Change><Action>CREATE</Action><ResourceRecordSet><Name>a.example.com</Name><Type>A</Type><TTL>300</TTL><ResourceRecords><ResourceRecord><Value>10.0.0.1</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#;
        let m = service("route53").unwrap().model();
        let op = m.operation("ChangeResourceRecordSets").unwrap();
        let root = parse_document(body).unwrap();
        let v = read_members(m, op.input.unwrap(), &root).unwrap();
        let rrset = &v["ChangeBatch"]["Changes"][0]["ResourceRecordSet"];
        assert_eq!(v["ChangeBatch"]["Comment"], "a & b");
        assert_eq!(rrset["TTL"], 300);
        assert_eq!(rrset["ResourceRecords"][0]["Value"], "10.0.0.1");
        assert!(parse_document(b"<a><b></a>").is_err());
    }
}
