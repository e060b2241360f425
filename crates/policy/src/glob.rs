//! Wildcard matching: `*` (any run of characters, including none) and `?` (exactly one
//! character), as IAM uses them in `Action`, `Resource`, `StringLike` and `ArnLike`.
//!
//! Patterns are compiled once, at policy parse time, into literal runs and wildcards, so a
//! match is a handful of byte comparisons. The matcher is the classic greedy algorithm that
//! backtracks only to the most recent `*`, which is linear in practice and never exponential.
//!
//! ARNs get their own matcher ([`ArnPattern`]): IAM matches "each of the six colon-delimited
//! components of the ARN separately" (condition operators reference, ArnLike), and "if the
//! `*` wildcard is the last character of a resource ARN segment, it can expand to match
//! beyond colon boundaries" (IAM JSON policy elements: Resource).

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// Characters that must appear as they are (already lowercased for case-insensitive globs).
    Lit(String),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Appends `text` with `*` and `?` acting as wildcards.
pub(crate) fn push_pattern(tokens: &mut Vec<Token>, text: &str) {
    let mut lit_start = 0;
    for (i, c) in text.char_indices() {
        if c == '*' || c == '?' {
            push_literal(tokens, &text[lit_start..i]);
            let tok = if c == '*' { Token::Star } else { Token::One };
            // `**` matches exactly what `*` matches; one star keeps backtracking cheap.
            if !(tok == Token::Star && tokens.last() == Some(&Token::Star)) {
                tokens.push(tok);
            }
            lit_start = i + 1;
        }
    }
    push_literal(tokens, &text[lit_start..]);
}

/// Appends `text` with every character taken literally (policy-variable values, `${*}`).
pub(crate) fn push_literal(tokens: &mut Vec<Token>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Token::Lit(prev)) = tokens.last_mut() {
        prev.push_str(text);
    } else {
        tokens.push(Token::Lit(text.to_string()));
    }
}

/// Which cheap test a pattern reduces to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `*`
    Any,
    /// No wildcards.
    Exact,
    /// `literal*`
    Prefix,
    /// `*literal`
    Suffix,
    General,
}

/// A compiled wildcard pattern.
///
/// ```
/// use kumori_policy::Glob;
/// assert!(Glob::new("s3:Get*").is_match("s3:GetObject"));
/// assert!(!Glob::new("s3:Get*").is_match("s3:getobject"));
/// assert!(Glob::new_ignore_ascii_case("s3:Get*").is_match("S3:GETOBJECT"));
/// assert!(Glob::new("a?c").is_match("abc"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    shape: Shape,
    ignore_case: bool,
}

impl Glob {
    /// Compiles a case-sensitive pattern (Resource, StringLike, ArnLike).
    pub fn new(pattern: &str) -> Self {
        let mut tokens = Vec::new();
        push_pattern(&mut tokens, pattern);
        Self::from_tokens(tokens, false)
    }

    /// Compiles a pattern that ignores ASCII case (Action names, which IAM matches
    /// case-insensitively).
    pub fn new_ignore_ascii_case(pattern: &str) -> Self {
        let mut tokens = Vec::new();
        push_pattern(&mut tokens, pattern);
        Self::from_tokens(tokens, true)
    }

    pub(crate) fn from_tokens(mut tokens: Vec<Token>, ignore_case: bool) -> Self {
        if ignore_case {
            for t in &mut tokens {
                if let Token::Lit(l) = t {
                    l.make_ascii_lowercase();
                }
            }
        }
        let shape = match tokens.as_slice() {
            [Token::Star] => Shape::Any,
            [] | [Token::Lit(_)] => Shape::Exact,
            [Token::Lit(_), Token::Star] => Shape::Prefix,
            [Token::Star, Token::Lit(_)] => Shape::Suffix,
            _ => Shape::General,
        };
        Self {
            tokens,
            shape,
            ignore_case,
        }
    }

    /// True for the pattern `*`, which matches everything.
    pub fn is_any(&self) -> bool {
        self.shape == Shape::Any
    }

    pub(crate) fn ends_with_star(&self) -> bool {
        self.tokens.last() == Some(&Token::Star)
    }

    /// Whether `text` matches the whole pattern.
    pub fn is_match(&self, text: &str) -> bool {
        let t = text.as_bytes();
        match (self.shape, self.tokens.as_slice()) {
            (Shape::Any, _) => true,
            (Shape::Exact, []) => t.is_empty(),
            (Shape::Exact, [Token::Lit(l)]) => t.len() == l.len() && self.eq(t, l.as_bytes()),
            (Shape::Prefix, [Token::Lit(l), _]) => {
                t.len() >= l.len() && self.eq(&t[..l.len()], l.as_bytes())
            }
            (Shape::Suffix, [_, Token::Lit(l)]) => {
                t.len() >= l.len() && self.eq(&t[t.len() - l.len()..], l.as_bytes())
            }
            _ => self.general(text),
        }
    }

    fn eq(&self, text: &[u8], lit: &[u8]) -> bool {
        if self.ignore_case {
            text.eq_ignore_ascii_case(lit)
        } else {
            text == lit
        }
    }

    fn lit_at(&self, t: &[u8], pos: usize, lit: &[u8]) -> bool {
        t.len() - pos >= lit.len() && self.eq(&t[pos..pos + lit.len()], lit)
    }

    fn general(&self, text: &str) -> bool {
        let t = text.as_bytes();
        let toks = &self.tokens;
        let (mut ti, mut pos) = (0usize, 0usize);
        // Where to resume after a mismatch: the token after the latest `*`, and the text
        // position that star's match currently ends at.
        let mut resume: Option<(usize, usize)> = None;
        loop {
            if let Some(tok) = toks.get(ti) {
                match tok {
                    Token::Star => {
                        if ti + 1 == toks.len() {
                            return true;
                        }
                        ti += 1;
                        resume = Some((ti, pos));
                        continue;
                    }
                    Token::One if pos < t.len() => {
                        pos += utf8_len(t[pos]);
                        ti += 1;
                        continue;
                    }
                    Token::Lit(l) if self.lit_at(t, pos, l.as_bytes()) => {
                        pos += l.len();
                        ti += 1;
                        continue;
                    }
                    _ => {}
                }
            } else if pos == t.len() {
                return true;
            }
            // Mismatch: let the latest star swallow one more character and retry.
            let Some((star_ti, star_pos)) = resume else {
                return false;
            };
            if star_pos >= t.len() {
                return false;
            }
            let mut next = star_pos + utf8_len(t[star_pos]);
            // Skip straight to the next place the following literal could start.
            if let (Token::Lit(l), false) = (&toks[star_ti], self.ignore_case) {
                match text[next..].find(l.as_str()) {
                    Some(i) => next += i,
                    None => return false,
                }
            }
            resume = Some((star_ti, next));
            ti = star_ti;
            pos = next;
        }
    }
}

/// Length of the UTF-8 sequence that starts with byte `b`, so `?` consumes one character.
fn utf8_len(b: u8) -> usize {
    match b {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// A value split at its first five colons: the six ARN segments
/// `arn:partition:service:region:account:resource`, where the last keeps any further colons.
/// Built once per request and shared by every resource pattern.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArnView<'a> {
    text: &'a str,
    colons: [usize; 5],
    n: usize,
}

impl<'a> ArnView<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut colons = [0; 5];
        let mut n = 0;
        for (i, b) in text.bytes().enumerate() {
            if b == b':' {
                colons[n] = i;
                n += 1;
                if n == 5 {
                    break;
                }
            }
        }
        Self { text, colons, n }
    }

    fn parts(&self) -> usize {
        self.n + 1
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.colons[i - 1] + 1 }
    }

    fn part(&self, i: usize) -> &'a str {
        let end = if i < self.n {
            self.colons[i]
        } else {
            self.text.len()
        };
        &self.text[self.start(i)..end]
    }

    fn rest_from(&self, i: usize) -> &'a str {
        &self.text[self.start(i)..]
    }
}

/// An ARN pattern matched segment by segment (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArnPattern {
    segments: Vec<Glob>,
}

impl ArnPattern {
    pub fn new(pattern: &str) -> Self {
        let mut tokens = Vec::new();
        push_pattern(&mut tokens, pattern);
        Self::from_tokens(tokens)
    }

    /// Splits compiled tokens into at most six segments at the first five literal colons.
    pub fn from_tokens(tokens: Vec<Token>) -> Self {
        let mut segments = Vec::new();
        let mut current = Vec::new();
        let mut splits = 0;
        for tok in tokens {
            match tok {
                Token::Lit(l) if splits < 5 && l.contains(':') => {
                    let mut pieces = l.splitn(5 - splits + 1, ':');
                    push_literal(&mut current, pieces.next().unwrap_or(""));
                    for piece in pieces {
                        segments.push(Glob::from_tokens(std::mem::take(&mut current), false));
                        splits += 1;
                        push_literal(&mut current, piece);
                    }
                }
                other => current.push(other),
            }
        }
        segments.push(Glob::from_tokens(current, false));
        Self { segments }
    }

    pub fn is_match(&self, value: &ArnView<'_>) -> bool {
        let k = self.segments.len();
        let parts = value.parts();
        if parts < k {
            return false;
        }
        let (last, leading) = self.segments.split_last().expect("at least one segment");
        if !leading
            .iter()
            .enumerate()
            .all(|(i, g)| g.is_match(value.part(i)))
        {
            return false;
        }
        if k == 6 || parts == k {
            last.is_match(value.part(k - 1))
        } else {
            // The value has more segments than the pattern: only a trailing `*` may span them.
            last.ends_with_star() && last.is_match(value.rest_from(k - 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious recursive definition, for checking the fast matcher against.
    fn naive(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| naive(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && naive(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && naive(rest, &t[1..]),
        }
    }

    fn naive_str(p: &str, t: &str) -> bool {
        naive(
            &p.chars().collect::<Vec<_>>(),
            &t.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn shapes() {
        assert!(Glob::new("*").is_match(""));
        assert!(Glob::new("*").is_match("anything"));
        assert!(Glob::new("").is_match(""));
        assert!(!Glob::new("").is_match("a"));
        assert!(Glob::new("abc").is_match("abc"));
        assert!(!Glob::new("abc").is_match("abcd"));
        assert!(Glob::new("ab*").is_match("ab"));
        assert!(Glob::new("ab*").is_match("abxyz"));
        assert!(!Glob::new("ab*").is_match("a"));
        assert!(Glob::new("*yz").is_match("xyz"));
        assert!(!Glob::new("*yz").is_match("yzx"));
        assert!(Glob::new("a*b*c").is_match("aXbYc"));
        assert!(Glob::new("a*b*c").is_match("abc"));
        assert!(!Glob::new("a*b*c").is_match("acb"));
        assert!(Glob::new("a?c").is_match("aéc"));
        assert!(!Glob::new("a?c").is_match("ac"));
        assert!(Glob::new("*a*a*a*b").is_match("aaaaaaaaaaab"));
        assert!(!Glob::new("*a*a*a*b").is_match("aaaaaaaaaaaa"));
    }

    #[test]
    fn case_rules() {
        assert!(!Glob::new("Bob").is_match("bob"));
        let g = Glob::new_ignore_ascii_case("EC2:Describe*");
        assert!(g.is_match("ec2:describeinstances"));
        assert!(g.is_match("EC2:DESCRIBEVPCS"));
        assert!(!g.is_match("ec2:runinstances"));
        let g = Glob::new_ignore_ascii_case("iam:*AccessKey*");
        assert!(g.is_match("IAM:CreateACCESSKEY"));
        assert!(g.is_match("iam:updateaccesskeys"));
    }

    #[test]
    fn arn_segments() {
        let m = |p: &str, v: &str| ArnPattern::new(p).is_match(&ArnView::new(v));
        // The ArnLike example from the IAM condition operators reference: `*` stays in its segment.
        assert!(!m(
            "arn:aws:someservice:*:111122223333:finance/*",
            "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
        ));
        assert!(m(
            "arn:aws:someservice:*:111122223333:finance/*",
            "arn:aws:someservice:us-east-2:111122223333:finance/a:b"
        ));
        // A trailing `*` in a short pattern spans the remaining segments.
        assert!(m(
            "arn:aws:ec2:*",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-1"
        ));
        assert!(m("arn:aws:iam::*", "arn:aws:iam::123456789012:user/bob"));
        assert!(m("*", "arn:aws:s3:::bucket/key"));
        assert!(m("*", "*"));
        // A short pattern without a trailing `*` cannot.
        assert!(!m(
            "arn:aws:ec2:us-east-1",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-1"
        ));
        // Nor can a `*` in the middle of the last segment, even where a plain glob would match.
        assert!(!m(
            "arn:aws:ec2:us-*1",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-1"
        ));
        assert!(
            Glob::new("arn:aws:ec2:us-*1")
                .is_match("arn:aws:ec2:us-east-1:123456789012:instance/i-1")
        );
        assert!(m(
            "arn:aws:s3:::bucket/*",
            "arn:aws:s3:::bucket/dir/file:with:colons"
        ));
        assert!(!m("arn:aws:s3:::bucket/*", "arn:aws:s3:::other/x"));
        assert!(!m("arn:aws:s3:::bucket", "*"));
        assert!(m("arn:aws:s3:::b?cket", "arn:aws:s3:::bucket"));
        // Resource matching is case-sensitive.
        assert!(!m(
            "arn:aws:iam::123456789012:user/Bob",
            "arn:aws:iam::123456789012:user/bob"
        ));
    }

    proptest! {
        #[test]
        fn agrees_with_naive(p in "[ab*?]{0,8}", t in "[abé]{0,10}") {
            prop_assert_eq!(Glob::new(&p).is_match(&t), naive_str(&p, &t));
        }

        #[test]
        fn ignore_case_agrees_with_lowercasing(p in "[aB*?:]{0,8}", t in "[AbB:]{0,10}") {
            prop_assert_eq!(
                Glob::new_ignore_ascii_case(&p).is_match(&t),
                naive_str(&p.to_ascii_lowercase(), &t.to_ascii_lowercase())
            );
        }

        // Within one segment, the ARN matcher is the plain matcher applied per segment.
        #[test]
        fn arn_is_segmentwise(segs in prop::collection::vec(("[ab*?]{0,3}", "[ab]{0,3}"), 6)) {
            let pattern = segs.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(":");
            let value = segs.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(":");
            let expected = segs.iter().all(|(p, v)| naive_str(p, v));
            prop_assert_eq!(ArnPattern::new(&pattern).is_match(&ArnView::new(&value)), expected);
        }
    }
}
