//! GetRandomPassword: a password from the character classes asked for, one of each by default.

use super::invalid_parameter;
use crate::{Ctx, Result, input};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::Deserialize;
use serde_json::{Value, json};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "GetRandomPassword" => get_random_password,
];

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
/// The punctuation Secrets Manager draws from.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct GetRandomPasswordRequest {
    pub password_length: Option<i64>,
    pub exclude_characters: Option<String>,
    #[serde(default)]
    pub exclude_numbers: bool,
    #[serde(default)]
    pub exclude_punctuation: bool,
    #[serde(default)]
    pub exclude_uppercase: bool,
    #[serde(default)]
    pub exclude_lowercase: bool,
    #[serde(default)]
    pub include_space: bool,
    pub require_each_included_type: Option<bool>,
}

/// A password as `req` asks for it (what RDS's managed passwords are made with too).
pub fn generate(req: &GetRandomPasswordRequest) -> Result<String> {
    let length = req.password_length.unwrap_or(32);
    if !(1..=4096).contains(&length) {
        return Err(invalid_parameter(
            "PasswordLength must be between 1 and 4096.",
        ));
    }
    let length = length as usize;
    let excluded = req.exclude_characters.as_deref().unwrap_or_default();
    let mut classes: Vec<Vec<char>> = Vec::new();
    for (set, skip) in [
        (LOWER, req.exclude_lowercase),
        (UPPER, req.exclude_uppercase),
        (DIGITS, req.exclude_numbers),
        (PUNCTUATION, req.exclude_punctuation),
        (" ", !req.include_space),
    ] {
        if skip {
            continue;
        }
        let chars: Vec<char> = set.chars().filter(|c| !excluded.contains(*c)).collect();
        if !chars.is_empty() {
            classes.push(chars);
        }
    }
    if classes.is_empty() {
        return Err(invalid_parameter(
            "The password can't be generated: every kind of character is excluded.",
        ));
    }
    let each = req.require_each_included_type.unwrap_or(true);
    if each && length < classes.len() {
        return Err(invalid_parameter(format!(
            "PasswordLength must be at least {} to include each type of character.",
            classes.len()
        )));
    }
    let all: Vec<char> = classes.iter().flatten().copied().collect();
    let mut rng = rand::rng();
    let mut out: Vec<char> = Vec::with_capacity(length);
    if each {
        for c in &classes {
            out.push(c[rng.random_range(0..c.len())]);
        }
    }
    while out.len() < length {
        out.push(all[rng.random_range(0..all.len())]);
    }
    out.shuffle(&mut rng);
    Ok(out.into_iter().collect())
}

pub async fn get_random_password(_ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GetRandomPasswordRequest = input(raw)?;
    Ok(json!({ "RandomPassword": generate(&req)? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hold_each_class_asked_for_and_nothing_excluded() {
        for _ in 0..50 {
            let p = generate(&GetRandomPasswordRequest {
                password_length: Some(8),
                exclude_characters: Some("abc".into()),
                exclude_punctuation: true,
                ..Default::default()
            })
            .unwrap();
            assert_eq!(p.len(), 8);
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(
                !p.chars()
                    .any(|c| "abc".contains(c) || PUNCTUATION.contains(c))
            );
        }
        assert!(
            generate(&GetRandomPasswordRequest {
                exclude_lowercase: true,
                exclude_uppercase: true,
                exclude_numbers: true,
                exclude_punctuation: true,
                ..Default::default()
            })
            .is_err()
        );
    }
}
