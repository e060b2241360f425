//! Policy variables: `${aws:username}` and friends, substituted from the request context
//! when a policy is evaluated ("IAM policy elements: Variables and tags").
//!
//! The rules implemented here, from that page:
//! - Variables exist only in policies with `"Version": "2012-10-17"`; in older policies
//!   `${aws:username}` is literal text (the caller decides, see `document.rs`).
//! - `${key}` is replaced by the value of context key `key` (case-insensitive). A key that is
//!   absent — or multivalued, since only single-valued keys can be variables — does not
//!   resolve, and "any attempt to match it fails": the resource or condition value holding it
//!   matches nothing.
//! - `${key, 'default'}` uses `default` when `key` does not resolve; `''` inside the quotes is
//!   one quote.
//! - `${*}`, `${?}` and `${$}` stand for a literal `*`, `?` and `$`.
//! - Substituted text is always literal: a user name containing `*` is not a wildcard.

use crate::glob::{Token, push_literal, push_pattern};
use crate::request::{Context, lookup};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Policy text, where `*` and `?` are wildcards if the operator has wildcards.
    Text(String),
    /// Text that is always literal: the special variables `${*}`, `${?}`, `${$}`.
    Literal(String),
    Var {
        /// Lowercased, for lookup.
        key: String,
        /// As written, for reporting it as a missing context key.
        name: String,
        default: Option<String>,
    },
    /// A `${...}` that is not a well-formed variable: it never resolves.
    Invalid(String),
}

/// A string holding at least one `${...}`, compiled for substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Compiles `raw`, or returns `None` if it holds no `${`, so callers keep their faster
    /// fixed-value path for the common case.
    pub fn parse(raw: &str) -> Option<Self> {
        if !raw.contains("${") {
            return None;
        }
        let mut pieces = Vec::new();
        let mut rest = raw;
        while let Some(open) = rest.find("${") {
            let Some(close) = rest[open..].find('}').map(|c| open + c) else {
                break; // An unclosed `${` is ordinary text.
            };
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            pieces.push(parse_variable(&rest[open + 2..close]));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Some(Self { pieces })
    }

    /// Substitutes into wildcard tokens (for `Resource`, `StringLike`, `ArnLike`). Returns
    /// `None` when a variable does not resolve; absent keys are added to `missing`.
    pub fn tokens<'p>(&'p self, ctx: &Context, missing: &mut Vec<&'p str>) -> Option<Vec<Token>> {
        let mut tokens = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => push_pattern(&mut tokens, t),
                Piece::Literal(t) => push_literal(&mut tokens, t),
                var => push_literal(&mut tokens, resolve(var, ctx, missing)?),
            }
        }
        Some(tokens)
    }

    /// Substitutes into plain text (for operators without wildcards, such as `StringEquals`).
    pub fn text<'p>(&'p self, ctx: &Context, missing: &mut Vec<&'p str>) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) | Piece::Literal(t) => out.push_str(t),
                var => out.push_str(resolve(var, ctx, missing)?),
            }
        }
        Some(out)
    }
}

/// The text a variable stands for (borrowed from the context or the default).
fn resolve<'p: 'v, 'c: 'v, 'v>(
    piece: &'p Piece,
    ctx: &'c Context,
    missing: &mut Vec<&'p str>,
) -> Option<&'v str> {
    let Piece::Var { key, name, default } = piece else {
        return None;
    };
    match lookup(ctx, key) {
        Some([single]) => Some(single),
        found => {
            if found.is_none() {
                missing.push(name);
            }
            default.as_deref()
        }
    }
}

/// Compiles what sits between `${` and `}`.
fn parse_variable(inner: &str) -> Piece {
    let trimmed = inner.trim();
    if matches!(trimmed, "*" | "?" | "$") {
        return Piece::Literal(trimmed.to_string());
    }
    let (key, default) = match trimmed.split_once(',') {
        None => (trimmed, None),
        Some((key, default)) => match parse_default(default.trim()) {
            Some(d) => (key.trim(), Some(d)),
            None => return Piece::Invalid(inner.to_string()),
        },
    };
    let valid_key = !key.is_empty()
        && !key
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '$' | '{' | ','));
    if !valid_key {
        return Piece::Invalid(inner.to_string());
    }
    Piece::Var {
        key: key.to_lowercase(),
        name: key.to_string(),
        default,
    }
}

/// `'text'` with `''` standing for one quote.
fn parse_default(quoted: &str) -> Option<String> {
    let body = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            // A lone quote would have ended the string early: only `''` is allowed inside.
            if chars.next() != Some('\'') {
                return None;
            }
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glob::Glob;

    fn ctx(pairs: &[(&str, &[&str])]) -> Context {
        pairs
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn text(raw: &str, c: &Context) -> Option<String> {
        Template::parse(raw).unwrap().text(c, &mut Vec::new())
    }

    #[test]
    fn no_variables_no_template() {
        assert!(Template::parse("arn:aws:s3:::bucket/*").is_none());
    }

    #[test]
    fn substitutes_case_insensitive_keys() {
        let c = ctx(&[("aws:username", &["alice"])]);
        assert_eq!(
            text("home/${aws:UserName}/", &c).as_deref(),
            Some("home/alice/")
        );
        assert_eq!(
            text("${aws:username}-${aws:username}", &c).as_deref(),
            Some("alice-alice")
        );
    }

    #[test]
    fn absent_or_multivalued_keys_do_not_resolve() {
        let c = ctx(&[("aws:tagkeys", &["a", "b"])]);
        let mut missing = Vec::new();
        let t = Template::parse("x/${aws:username}").unwrap();
        assert_eq!(t.text(&c, &mut missing), None);
        assert_eq!(missing, ["aws:username"]);
        assert_eq!(text("${aws:TagKeys}", &c), None);
    }

    #[test]
    fn defaults() {
        let c = ctx(&[]);
        assert_eq!(
            text("${aws:userid, 'anonymous'}", &c).as_deref(),
            Some("anonymous")
        );
        assert_eq!(
            text("${ aws:userid , 'it''s' }", &c).as_deref(),
            Some("it's")
        );
        // Malformed defaults never resolve.
        assert_eq!(text("${aws:userid, anonymous}", &c), None);
        assert_eq!(text("${aws:userid, 'a'b'}", &c), None);
        let c = ctx(&[("aws:userid", &["AIDA1"])]);
        assert_eq!(
            text("${aws:userid, 'anonymous'}", &c).as_deref(),
            Some("AIDA1")
        );
    }

    #[test]
    fn special_characters_are_literal() {
        let c = ctx(&[]);
        assert_eq!(text("a${*}b${?}c${$}", &c).as_deref(), Some("a*b?c$"));
        let tokens = Template::parse("a${*}*")
            .unwrap()
            .tokens(&c, &mut Vec::new())
            .unwrap();
        let g = Glob::from_tokens(tokens, false);
        assert!(g.is_match("a*anything"));
        assert!(!g.is_match("ab"));
    }

    #[test]
    fn substituted_values_are_not_wildcards() {
        let c = ctx(&[("aws:username", &["*"])]);
        let tokens = Template::parse("home/${aws:username}")
            .unwrap()
            .tokens(&c, &mut Vec::new())
            .unwrap();
        let g = Glob::from_tokens(tokens, false);
        assert!(g.is_match("home/*"));
        assert!(!g.is_match("home/alice"));
    }

    #[test]
    fn broken_syntax() {
        let c = ctx(&[("a:b", &["v"])]);
        assert_eq!(text("x${a:b", &c).as_deref(), Some("x${a:b"));
        assert_eq!(text("${}", &c), None);
        assert_eq!(text("${a b}", &c), None);
    }
}
