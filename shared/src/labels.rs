//! Kubernetes label selectors, equality- and set-based, with the API server's
//! grammar and matching rules (`k8s.io/apimachinery/pkg/labels`). Used to
//! validate configuration before it reaches a cluster, to filter snapshots,
//! and by the test bed's fake API server.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::InvalidValue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Exists(key) => labels.contains_key(key),
            Self::NotExists(key) => !labels.contains_key(key),
            Self::Equals(key, value) => labels.get(key) == Some(value),
            // NB: as in Kubernetes, `!=` and `notin` match objects that lack the key.
            Self::NotEquals(key, value) => labels.get(key) != Some(value),
            Self::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Self::NotIn(key, values) => !labels.get(key).is_some_and(|v| values.contains(v)),
        }
    }
}

/// A parsed selector. Keeps its source text so that exactly what the user
/// wrote is what the API server receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelSelector {
    source: String,
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self { source: String::new(), requirements: Vec::new() }
    }

    pub fn parse(source: &str) -> Result<Self, InvalidValue> {
        let fail = |rule| InvalidValue {
            kind: "label selector",
            value: source.chars().take(80).collect(),
            rule,
        };
        let requirements = Parser { rest: source }.requirements().map_err(fail)?;
        Ok(Self { source: source.trim().to_owned(), requirements })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl TryFrom<String> for LabelSelector {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<LabelSelector> for String {
    fn from(value: LabelSelector) -> Self {
        value.source
    }
}

struct Parser<'a> {
    rest: &'a str,
}

impl<'a> Parser<'a> {
    fn requirements(&mut self) -> Result<Vec<Requirement>, &'static str> {
        let mut out = Vec::new();
        self.skip_ws();
        if self.rest.is_empty() {
            return Ok(out);
        }
        loop {
            out.push(self.requirement()?);
            self.skip_ws();
            if self.rest.is_empty() {
                return Ok(out);
            }
            if !self.eat(",") {
                return Err("requirements must be separated by ','");
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, &'static str> {
        self.skip_ws();
        if self.eat("!") {
            self.skip_ws();
            return Ok(Requirement::NotExists(self.key()?));
        }
        let key = self.key()?;
        self.skip_ws();
        if self.rest.is_empty() || self.rest.starts_with(',') {
            return Ok(Requirement::Exists(key));
        }
        if self.eat("!=") {
            return Ok(Requirement::NotEquals(key, self.value()?));
        }
        if self.eat("==") || self.eat("=") {
            return Ok(Requirement::Equals(key, self.value()?));
        }
        if self.eat_word("notin") {
            return Ok(Requirement::NotIn(key, self.value_set()?));
        }
        if self.eat_word("in") {
            return Ok(Requirement::In(key, self.value_set()?));
        }
        Err("expected one of =, ==, !=, in, notin after a key")
    }

    fn key(&mut self) -> Result<String, &'static str> {
        let token = self.token();
        if token.is_empty() {
            return Err("expected a label key");
        }
        let (prefix, name) = match token.split_once('/') {
            Some((prefix, name)) => (Some(prefix), name),
            None => (None, token),
        };
        if let Some(prefix) = prefix {
            let subdomain_ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                });
            if !subdomain_ok {
                return Err("a label key prefix must be a DNS subdomain");
            }
        }
        if name.is_empty() || !is_label_value(name) {
            return Err(
                "a label key name must be 1-63 characters of [A-Za-z0-9_.-], alphanumeric at both ends",
            );
        }
        Ok(token.to_owned())
    }

    fn value(&mut self) -> Result<String, &'static str> {
        self.skip_ws();
        let token = self.token();
        if !is_label_value(token) {
            return Err(
                "a label value must be at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends",
            );
        }
        Ok(token.to_owned())
    }

    fn value_set(&mut self) -> Result<Vec<String>, &'static str> {
        self.skip_ws();
        if !self.eat("(") {
            return Err("expected '(' to open a value set");
        }
        let mut values = Vec::new();
        loop {
            values.push(self.value()?);
            self.skip_ws();
            if self.eat(")") {
                return Ok(values);
            }
            if !self.eat(",") {
                return Err("expected ',' or ')' in a value set");
            }
        }
    }

    /// Everything up to the next operator, separator or blank.
    fn token(&mut self) -> &'a str {
        let end = self
            .rest
            .find(|c: char| c.is_whitespace() || "=!,()".contains(c))
            .unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        token
    }

    fn eat(&mut self, literal: &str) -> bool {
        match self.rest.strip_prefix(literal) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// A keyword must be followed by a blank or '(' so that a key named
    /// `index` is not read as `in` + `dex`.
    fn eat_word(&mut self, word: &str) -> bool {
        match self.rest.strip_prefix(word) {
            Some(rest) if rest.starts_with(|c: char| c.is_whitespace() || c == '(') => {
                self.rest = rest;
                true
            }
            _ => false,
        }
    }

    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start();
    }
}

fn is_label_value(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    let bytes = value.as_bytes();
    value.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn equality_requirements() {
        let s = LabelSelector::parse("app.kubernetes.io/component=dab, tier!=db").unwrap();
        assert!(s.matches(&labels(&[("app.kubernetes.io/component", "dab")])));
        assert!(!s.matches(&labels(&[("app.kubernetes.io/component", "dab"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app.kubernetes.io/component", "web")])));
        let s = LabelSelector::parse("a==b").unwrap();
        assert!(s.matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn set_requirements() {
        let s = LabelSelector::parse("env in (stg, prod),tier notin (db),team,!legacy").unwrap();
        assert_eq!(s.requirements().len(), 4);
        assert!(s.matches(&labels(&[("env", "stg"), ("team", "a")])));
        assert!(!s.matches(&labels(&[("env", "dev"), ("team", "a")])));
        assert!(!s.matches(&labels(&[("env", "stg"), ("team", "a"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("env", "stg")])));
        assert!(!s.matches(&labels(&[("env", "stg"), ("team", "a"), ("legacy", "")])));
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = LabelSelector::parse("  ").unwrap();
        assert!(s.is_everything());
        assert!(s.matches(&labels(&[])));
    }

    #[test]
    fn keys_starting_with_in_are_not_keywords() {
        let s = LabelSelector::parse("index=1").unwrap();
        assert_eq!(s.requirements(), &[Requirement::Equals("index".into(), "1".into())]);
    }

    #[test]
    fn malformed_selectors_are_refused_with_a_reason() {
        for bad in ["=x", "a=b,", "a in b", "a in (b", "a=-b", "Bad_Prefix/x=1", "a b", "a=(b)"] {
            let err = LabelSelector::parse(bad).unwrap_err();
            assert_eq!(err.kind, "label selector", "{bad}");
        }
    }
}
