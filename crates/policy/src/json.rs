//! A small JSON reader for policy documents.
//!
//! It exists (rather than `serde_json::Value`) because IAM needs two things `Value` drops:
//! the byte span of every value, so a matched statement can report where it sits in the
//! document (SimulatePrincipalPolicy's `StartPosition`/`EndPosition`), and duplicate object
//! keys, which the policy grammar forbids ("Individual elements must not contain multiple
//! instances of the same key"). Numbers keep their source text: IAM compares condition
//! values as strings, so `10` in a policy is the string `"10"`.

/// A JSON value with the byte range `start..end` it occupies in the source text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub value: Json,
    pub start: usize,
    pub end: usize,
}

/// A parsed JSON value. Objects keep their members in source order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// The number exactly as written.
    Number(String),
    String(String),
    Array(Vec<Spanned>),
    Object(Vec<(String, Spanned)>),
}

#[cfg(test)]
impl Json {
    /// The member named `key`, if this is an object that has one.
    pub fn get(&self, key: &str) -> Option<&Spanned> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why a document is not acceptable JSON. Callers only need to know that it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    Syntax,
    DuplicateKey,
}

/// Deeper nesting than any policy needs; bounds recursion on hostile input.
const MAX_DEPTH: usize = 64;

/// Parses a whole document: one value, surrounded only by whitespace.
pub(crate) fn parse(text: &str) -> Result<Spanned, JsonError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
    };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(JsonError::Syntax);
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(JsonError::Syntax)
        }
    }

    fn value(&mut self, depth: usize) -> Result<Spanned, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::Syntax);
        }
        let start = self.pos;
        let value = match self.peek().ok_or(JsonError::Syntax)? {
            b'{' => self.object(depth)?,
            b'[' => self.array(depth)?,
            b'"' => Json::String(self.string()?),
            b't' => self.literal("true", Json::Bool(true))?,
            b'f' => self.literal("false", Json::Bool(false))?,
            b'n' => self.literal("null", Json::Null)?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return Err(JsonError::Syntax),
        };
        Ok(Spanned {
            value,
            start,
            end: self.pos,
        })
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, JsonError> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(JsonError::Syntax)
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.expect(b'{')?;
        let mut members: Vec<(String, Spanned)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(JsonError::Syntax);
            }
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            if members.iter().any(|(k, _)| *k == key) {
                return Err(JsonError::DuplicateKey);
            }
            members.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err(JsonError::Syntax),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(JsonError::Syntax),
            }
        }
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(JsonError::Syntax),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(JsonError::Syntax);
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(JsonError::Syntax);
            }
            self.digits();
        }
        Ok(Json::Number(self.text[start..self.pos].to_string()))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            // Copy the run of ordinary characters in one go; the source is valid UTF-8 and
            // the run stops only at ASCII bytes, so the slice is on character boundaries.
            let run_start = self.pos;
            while let Some(&b) = self.s.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek().ok_or(JsonError::Syntax)? {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let esc = self.peek().ok_or(JsonError::Syntax)?;
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(JsonError::Syntax),
                    }
                }
                // A raw control character inside a string.
                _ => return Err(JsonError::Syntax),
            }
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` already consumed), joining surrogate
    /// pairs written as two escapes.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) {
            if !self.s[self.pos..].starts_with(b"\\u") {
                return Err(JsonError::Syntax);
            }
            self.pos += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(JsonError::Syntax);
            }
            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            char::from_u32(c).ok_or(JsonError::Syntax)
        } else {
            char::from_u32(hi).ok_or(JsonError::Syntax)
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or(JsonError::Syntax)?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char).to_digit(16).ok_or(JsonError::Syntax)?;
            v = v * 16 + n;
        }
        self.pos += 4;
        Ok(v)
    }
}

/// A 1-based line and column, as SimulatePrincipalPolicy reports statement positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
}

/// Turns byte offsets into line/column positions for one document.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, line_starts }
    }

    pub fn position(&self, offset: usize) -> Position {
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let column = self.text[self.line_starts[line]..offset].chars().count() + 1;
        Position {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn to_serde(j: &Json) -> serde_json::Value {
        match j {
            Json::Null => serde_json::Value::Null,
            Json::Bool(b) => serde_json::Value::Bool(*b),
            Json::Number(n) => serde_json::from_str(n).unwrap(),
            Json::String(s) => serde_json::Value::String(s.clone()),
            Json::Array(a) => a.iter().map(|v| to_serde(&v.value)).collect(),
            Json::Object(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), to_serde(&v.value)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn spans_cover_values() {
        let text = r#" {"a": [1, "x"], "b": {"c": null}} "#;
        let v = parse(text).unwrap();
        assert_eq!(
            &text[v.start..v.end],
            r#"{"a": [1, "x"], "b": {"c": null}}"#
        );
        let a = v.value.get("a").unwrap();
        assert_eq!(&text[a.start..a.end], r#"[1, "x"]"#);
        let b = v.value.get("b").unwrap();
        assert_eq!(&text[b.start..b.end], r#"{"c": null}"#);
    }

    #[test]
    fn numbers_keep_their_text() {
        let v = parse("[10, -0.50, 1e3]").unwrap();
        let Json::Array(items) = v.value else {
            panic!("not an array")
        };
        let texts: Vec<_> = items
            .iter()
            .map(|i| match &i.value {
                Json::Number(n) => n.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, ["10", "-0.50", "1e3"]);
    }

    #[test]
    fn rejects_what_json_rejects() {
        for bad in [
            "",
            "{",
            "{\"a\":}",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "tru",
            "\"\\x\"",
            "\"a\nb\"",
            "{} {}",
            "{'a':1}",
            "\"\\ud800\"",
            "[1 2]",
        ] {
            assert_eq!(parse(bad), Err(JsonError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn rejects_duplicate_keys() {
        assert_eq!(
            parse(r#"{"a":1,"b":{"c":1,"c":2}}"#),
            Err(JsonError::DuplicateKey)
        );
    }

    #[test]
    fn escapes_and_surrogates() {
        let v = parse(r#""a\"\\\/\n\u00e9\ud83d\ude00""#).unwrap();
        assert_eq!(v.value, Json::String("a\"\\/\né😀".to_string()));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(parse(&text), Err(JsonError::Syntax));
    }

    #[test]
    fn positions_are_one_based() {
        let text = "{\n  \"é\": 1,\n  \"b\": 2\n}";
        let idx = LineIndex::new(text);
        assert_eq!(idx.position(0), Position { line: 1, column: 1 });
        let b = text.find("\"b\"").unwrap();
        assert_eq!(idx.position(b), Position { line: 3, column: 3 });
        let one = text.find('1').unwrap();
        assert_eq!(idx.position(one), Position { line: 2, column: 8 });
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z\\*\\?\\$\\{\\}\"\\\\é😀 \\n]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-zA-Z]{1,5}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        // Whatever serde_json writes (compact or pretty), this reader reads back to the same value.
        #[test]
        fn agrees_with_serde_json(v in arb_json(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            let parsed = parse(&text).unwrap();
            prop_assert_eq!(to_serde(&parsed.value), v);
            prop_assert_eq!((parsed.start, parsed.end), (0, text.len()));
        }
    }
}
