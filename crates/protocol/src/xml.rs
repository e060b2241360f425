//! Output of the XML protocols (ec2, awsQuery, rest-xml), written from a JSON value keyed by the
//! model's member names. Element names, list wrapping and flattening come from the model only.

use crate::model::{Kind, Member, Model, Protocol, ShapeId};
use serde_json::Value;
use std::fmt::Write;

/// Escapes text for XML element content and attribute values.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// The complete response document of an ec2 or awsQuery operation.
pub fn response_document(
    model: &Model,
    operation: &str,
    output: Option<ShapeId>,
    result_wrapper: Option<&str>,
    value: &Value,
    request_id: &str,
) -> String {
    let mut out = String::with_capacity(1024);
    let ns = escape(&model.xml_namespace);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{operation}Response xmlns=\"{ns}\">"
    );
    match model.protocol {
        Protocol::Ec2 => {
            let _ = write!(out, "<requestId>{request_id}</requestId>");
            if let Some(shape) = output {
                write_members(model, shape, value, &mut out);
            }
        }
        _ => {
            if let Some(shape) = output {
                let wrapper = result_wrapper
                    .map(str::to_string)
                    .unwrap_or(format!("{operation}Result"));
                let _ = write!(out, "<{wrapper}>");
                write_members(model, shape, value, &mut out);
                let _ = write!(out, "</{wrapper}>");
            }
            let _ = write!(
                out,
                "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            );
        }
    }
    let _ = write!(out, "</{operation}Response>");
    out
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

pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;
    use serde_json::json;

    #[test]
    fn ec2_output_uses_location_names_and_items() {
        let m = service("ec2").unwrap().model();
        let op = m.operation("DescribeVpcs").unwrap();
        let v = json!({"Vpcs": [{"VpcId": "vpc-1", "IsDefault": false,
            "Tags": [{"Key": "Name", "Value": "a<b"}]}]});
        let doc = response_document(m, "DescribeVpcs", op.output, None, &v, "rid");
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
            &v,
            "rid",
        );
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
