//! Typed output straight to XML: a serde [`Serializer`](ser::Serializer) that walks the model
//! beside the data, so element names, list wrapping, flattening and timestamps come from the
//! model exactly as in [`crate::xml::write_members`] — without building a JSON value first.
//!
//! Why: describes of a thousand resources spend most of their time allocating, filling and
//! freeing `serde_json::Value` trees. Structures serialize their fields in the order the type
//! declares them (clients read XML by element name, not position); a field with no member of
//! that name in the shape is kumori's bug and fails loudly in debug builds.

use crate::model::{Kind, Member, Model, ShapeId};
use serde::Serialize;
use serde::ser::{self, Impossible};
use std::fmt::{self, Display, Write};

/// Why a typed output could not be written.
#[derive(Debug)]
pub struct Error(pub String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Writes the fields of `value` as the members of structure `shape`, with no enclosing element.
pub fn write_members<T: Serialize + ?Sized>(
    model: &Model,
    shape: ShapeId,
    value: &T,
    out: &mut String,
) -> Result<()> {
    value.serialize(Members { model, shape, out })
}

fn push_escaped(out: &mut String, s: &str) {
    out.push_str(&crate::xml::escape(s));
}

fn open(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// The member of structure `shape` that a field named `key` fills. The search starts at
/// `*next`, where the previous field's member left it, and moves it on: types that declare
/// their fields in model order (as kumori's hot outputs do) find each in one comparison.
fn member<'m>(model: &'m Model, shape: ShapeId, key: &str, next: &mut usize) -> Option<&'m Member> {
    let Kind::Structure { members } = &model.shape(shape).kind else {
        return None;
    };
    let start = (*next).min(members.len());
    let found = members[start..]
        .iter()
        .position(|m| m.name == key)
        .map(|i| start + i)
        .or_else(|| members[..start].iter().position(|m| m.name == key));
    debug_assert!(
        found.is_some(),
        "output field {key} is not a member of {}",
        model.shape(shape).name
    );
    let i = found?;
    *next = i + 1;
    Some(&members[i]).filter(|m| m.location.is_none())
}

/// Fields of a structure, written one element each.
struct Fields<'m, 'o> {
    model: &'m Model,
    shape: ShapeId,
    out: &'o mut String,
    /// The structure's own element, closed at the end; `None` at the top level.
    close: Option<&'m str>,
    /// The key of the map entry being written, when a structure arrives as a map.
    key: Option<String>,
    /// Where to start looking for the next field's member.
    next: usize,
}

impl Fields<'_, '_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        if let Some(m) = member(self.model, self.shape, key, &mut self.next) {
            let name = m.location_name.as_deref().unwrap_or(&m.name);
            value.serialize(Element {
                model: self.model,
                member: m,
                name,
                out: self.out,
            })?;
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        if let Some(name) = self.close {
            close(self.out, name);
        }
        Ok(())
    }
}

impl ser::SerializeStruct for Fields<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.field(key, v)
    }
    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeMap for Fields<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(KeyText)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let key = self.key.take().unwrap_or_default();
        self.field(&key, v)
    }
    fn end(self) -> Result<()> {
        self.finish()
    }
}

/// A map shape's entries: `<entry><key>k</key><value>v</value></entry>`, or flattened.
struct Entries<'m, 'o> {
    model: &'m Model,
    key_name: &'m str,
    value: &'m Member,
    value_name: &'m str,
    /// `entry`, or the member's own name when flattened.
    entry: &'m str,
    out: &'o mut String,
    close: Option<&'m str>,
}

impl ser::SerializeMap for Entries<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        let k = key.serialize(KeyText)?;
        open(self.out, self.entry);
        open(self.out, self.key_name);
        push_escaped(self.out, &k);
        close(self.out, self.key_name);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        v.serialize(Element {
            model: self.model,
            member: self.value,
            name: self.value_name,
            out: self.out,
        })?;
        close(self.out, self.entry);
        Ok(())
    }
    fn end(self) -> Result<()> {
        if let Some(name) = self.close {
            close(self.out, name);
        }
        Ok(())
    }
}

/// A list's items, each written as the list's member.
struct Items<'m, 'o> {
    model: &'m Model,
    item: &'m Member,
    item_name: &'m str,
    out: &'o mut String,
    close: Option<&'m str>,
}

impl ser::SerializeSeq for Items<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        v.serialize(Element {
            model: self.model,
            member: self.item,
            name: self.item_name,
            out: self.out,
        })
    }
    fn end(self) -> Result<()> {
        if let Some(name) = self.close {
            close(self.out, name);
        }
        Ok(())
    }
}

impl ser::SerializeTuple for Items<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<()> {
        ser::SerializeSeq::end(self)
    }
}

/// One element: member `member` of some structure (or a list's item), named `name`. Absent
/// values (`None`, unit) write nothing, as the JSON walker skips nulls.
struct Element<'m, 'o> {
    model: &'m Model,
    member: &'m Member,
    name: &'m str,
    out: &'o mut String,
}

impl<'m, 'o> Element<'m, 'o> {
    fn kind(&self) -> &'m Kind {
        &self.model.shape(self.member.shape).kind
    }

    fn text(self, text: &str) -> Result<()> {
        open(self.out, self.name);
        if matches!(self.kind(), Kind::Timestamp) {
            let v = serde_json::Value::String(text.to_string());
            push_escaped(self.out, &crate::time::format_timestamp(&v));
        } else {
            push_escaped(self.out, text);
        }
        close(self.out, self.name);
        Ok(())
    }

    fn number(self, n: serde_json::Number) -> Result<()> {
        if matches!(self.kind(), Kind::Timestamp) {
            let text = crate::time::format_timestamp(&serde_json::Value::Number(n));
            return self.text(&text);
        }
        open(self.out, self.name);
        let _ = write!(self.out, "{n}");
        close(self.out, self.name);
        Ok(())
    }

    fn structure(self, key: Option<String>) -> Result<Fields<'m, 'o>> {
        if !matches!(self.kind(), Kind::Structure { .. }) {
            return Err(Error(format!("{} is not a structure", self.name)));
        }
        open(self.out, self.name);
        Ok(Fields {
            model: self.model,
            shape: self.member.shape,
            out: self.out,
            close: Some(self.name),
            key,
            next: 0,
        })
    }

    fn list(self) -> Result<Items<'m, 'o>> {
        let shape = self.model.shape(self.member.shape);
        let Kind::List { member: item } = &shape.kind else {
            return Err(Error(format!("{} is not a list", self.name)));
        };
        if shape.flattened || self.member.flattened {
            let item_name = item.location_name.as_deref().unwrap_or(self.name);
            return Ok(Items {
                model: self.model,
                item,
                item_name,
                out: self.out,
                close: None,
            });
        }
        open(self.out, self.name);
        Ok(Items {
            model: self.model,
            item,
            item_name: item.location_name.as_deref().unwrap_or("member"),
            out: self.out,
            close: Some(self.name),
        })
    }
}

macro_rules! numbers {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<()> {
            self.number(serde_json::Number::from(v))
        }
    )*};
}

impl<'m, 'o> ser::Serializer for Element<'m, 'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Items<'m, 'o>;
    type SerializeTuple = Items<'m, 'o>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = MapOrStruct<'m, 'o>;
    type SerializeStruct = Fields<'m, 'o>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.text(if v { "true" } else { "false" })
    }
    numbers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
             serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64);
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.serialize_f64(v as f64)
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        match serde_json::Number::from_f64(v) {
            Some(n) => self.number(n),
            None => Err(Error(format!("{} is not a finite number", self.name))),
        }
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.text(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.text(v)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<()> {
        Err(Error("blobs are written as base64 text".into()))
    }
    fn serialize_none(self) -> Result<()> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Items<'m, 'o>> {
        self.list()
    }
    fn serialize_tuple(self, _: usize) -> Result<Items<'m, 'o>> {
        self.list()
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(Error("tuple structs have no XML form".into()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(Error("tuple variants have no XML form".into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapOrStruct<'m, 'o>> {
        let shape = self.model.shape(self.member.shape);
        if let Kind::Map { key, value } = &shape.kind {
            let flat = shape.flattened || self.member.flattened;
            if !flat {
                open(self.out, self.name);
            }
            return Ok(MapOrStruct::Map(Entries {
                model: self.model,
                key_name: key.location_name.as_deref().unwrap_or("key"),
                value,
                value_name: value.location_name.as_deref().unwrap_or("value"),
                entry: if flat { self.name } else { "entry" },
                out: self.out,
                close: (!flat).then_some(self.name),
            }));
        }
        Ok(MapOrStruct::Struct(self.structure(None)?))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'m, 'o>> {
        self.structure(None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(Error("struct variants have no XML form".into()))
    }
}

/// A serde map is either a map shape's entries or, for JSON values, a structure's fields.
enum MapOrStruct<'m, 'o> {
    Map(Entries<'m, 'o>),
    Struct(Fields<'m, 'o>),
}

impl ser::SerializeMap for MapOrStruct<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        match self {
            MapOrStruct::Map(m) => m.serialize_key(key),
            MapOrStruct::Struct(s) => s.serialize_key(key),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        match self {
            MapOrStruct::Map(m) => m.serialize_value(v),
            MapOrStruct::Struct(s) => s.serialize_value(v),
        }
    }
    fn end(self) -> Result<()> {
        match self {
            MapOrStruct::Map(m) => ser::SerializeMap::end(m),
            MapOrStruct::Struct(s) => ser::SerializeMap::end(s),
        }
    }
}

/// The top level: a structure's members without an element of its own.
struct Members<'m, 'o> {
    model: &'m Model,
    shape: ShapeId,
    out: &'o mut String,
}

impl Members<'_, '_> {
    fn not_structure(&self) -> Error {
        Error(format!(
            "output of {} must be a structure",
            self.model.shape(self.shape).name
        ))
    }
}

impl<'m, 'o> ser::Serializer for Members<'m, 'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Fields<'m, 'o>;
    type SerializeStruct = Fields<'m, 'o>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_map(self, _: Option<usize>) -> Result<Fields<'m, 'o>> {
        Ok(Fields {
            model: self.model,
            shape: self.shape,
            out: self.out,
            close: None,
            key: None,
            next: 0,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'m, 'o>> {
        self.serialize_map(None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_none(self) -> Result<()> {
        Ok(())
    }
    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_bool(self, _: bool) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_i8(self, _: i8) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_i16(self, _: i16) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_i32(self, _: i32) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_i64(self, _: i64) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_u8(self, _: u8) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_u16(self, _: u16) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_u32(self, _: u32) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_u64(self, _: u64) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_f32(self, _: f32) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_f64(self, _: f64) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_char(self, _: char) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_str(self, _: &str) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<()> {
        Err(self.not_structure())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(self.not_structure())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(self.not_structure())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(self.not_structure())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(self.not_structure())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(self.not_structure())
    }
}

/// A map key as text (keys are strings in every AWS map shape).
struct KeyText;

impl ser::Serializer for KeyText {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_bool(self, v: bool) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, v: f32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_f64(self, v: f64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String> {
        Err(Error("map keys are text".into()))
    }
    fn serialize_none(self) -> Result<String> {
        Err(Error("map keys are text".into()))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<String> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<String> {
        Err(Error("map keys are text".into()))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String> {
        Err(Error("map keys are text".into()))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String> {
        Err(Error("map keys are text".into()))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(Error("map keys are text".into()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(Error("map keys are text".into()))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(Error("map keys are text".into()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(Error("map keys are text".into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(Error("map keys are text".into()))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(Error("map keys are text".into()))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(Error("map keys are text".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;
    use serde_json::json;

    /// The typed writer must write exactly what the JSON walker writes, member for member.
    fn both(service_name: &str, op: &str, v: serde_json::Value) -> (String, String) {
        let m = service(service_name).unwrap().model();
        let shape = m.operation(op).unwrap().output.unwrap();
        let mut walked = String::new();
        crate::xml::write_members(m, shape, &v, &mut walked);
        let mut typed = String::new();
        write_members(m, shape, &v, &mut typed).unwrap();
        (walked, typed)
    }

    #[test]
    fn json_values_write_as_the_walker_writes_them() {
        // One member per structure level, so the walker's model order and the map's key
        // order cannot differ.
        let (a, b) = both(
            "ec2",
            "DescribeVpcs",
            json!({"Vpcs": [{"Tags": [{"Key": "k<", "Value": "v&"}]}, {"IsDefault": true}]}),
        );
        assert_eq!(a, b);
        let (a, b) = both(
            "iam",
            "ListUsers",
            json!({"Users": [{"CreateDate": "2026-01-02T03:04:05Z"}]}),
        );
        assert_eq!(a, b);
        let (a, b) = both(
            "iam",
            "GetAccountSummary",
            json!({"SummaryMap": {"Users": 5}}),
        );
        assert_eq!(a, b);
        assert!(
            b.contains("<SummaryMap><entry><key>Users</key><value>5</value></entry></SummaryMap>"),
            "{b}"
        );
    }

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Group<'a> {
        group_id: &'a str,
        ip_permissions: Vec<Perm>,
        tags: Option<Vec<(u8, u8)>>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Perm {
        ip_protocol: &'static str,
        from_port: Option<i64>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Page<'a> {
        security_groups: Vec<Group<'a>>,
        next_token: Option<String>,
    }

    #[test]
    fn typed_structs_use_location_names_and_skip_absent_members() {
        let m = service("ec2").unwrap().model();
        let shape = m
            .operation("DescribeSecurityGroups")
            .unwrap()
            .output
            .unwrap();
        let page = Page {
            security_groups: vec![Group {
                group_id: "sg-1",
                ip_permissions: vec![Perm {
                    ip_protocol: "-1",
                    from_port: None,
                }],
                tags: None,
            }],
            next_token: None,
        };
        let mut out = String::new();
        write_members(m, shape, &page, &mut out).unwrap();
        assert_eq!(
            out,
            "<securityGroupInfo><item><groupId>sg-1</groupId><ipPermissions><item>\
             <ipProtocol>-1</ipProtocol></item></ipPermissions></item></securityGroupInfo>"
        );
    }
}
