//! Label selectors: `app=nginx,tier!=db,env in (a,b),!legacy,release` and the structured
//! `metav1.LabelSelector` form (`matchLabels` / `matchExpressions`).

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Operator,
    pub values: Vec<String>,
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let got = labels.get(&self.key);
        match self.op {
            Operator::Equals | Operator::In => {
                got.is_some_and(|v| self.values.iter().any(|w| w == v))
            }
            Operator::NotEquals | Operator::NotIn => {
                got.is_none_or(|v| !self.values.iter().any(|w| w == v))
            }
            Operator::Exists => got.is_some(),
            Operator::DoesNotExist => got.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(bound)) = (got, self.values.first()) else {
                    return false;
                };
                match (v.parse::<i64>(), bound.parse::<i64>()) {
                    (Ok(v), Ok(b)) if self.op == Operator::GreaterThan => v > b,
                    (Ok(v), Ok(b)) => v < b,
                    _ => false,
                }
            }
        }
    }
}

/// A conjunction of requirements. The empty selector matches everything; `nothing` matches
/// nothing (a structured selector that is null, as upstream treats it for some callers).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
    pub nothing: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl LabelSelector {
    pub fn everything() -> Self {
        Self::default()
    }

    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches the labels of an object (`metadata.labels`).
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(&labels_of(obj))
    }

    /// Parses the string form used by `?labelSelector=` and `kubectl -l`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut p = Lexer {
            s: s.as_bytes(),
            pos: 0,
        };
        let mut requirements = Vec::new();
        p.skip_ws();
        if p.at_end() {
            return Ok(Self::everything());
        }
        loop {
            requirements.push(p.requirement()?);
            p.skip_ws();
            if p.at_end() {
                break;
            }
            if !p.eat(b",") {
                return Err(ParseError(format!(
                    "found '{}', expected: ',' or 'end of string'",
                    p.peek_token()
                )));
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Converts a structured `metav1.LabelSelector`. `null` selects nothing, `{}` everything.
    pub fn from_structured(sel: Option<&Value>) -> Result<Self, ParseError> {
        let Some(sel) = sel.filter(|v| !v.is_null()) else {
            return Ok(Self::nothing());
        };
        let mut requirements = Vec::new();
        if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in ml {
                requirements.push(Requirement {
                    key: k.clone(),
                    op: Operator::Equals,
                    values: vec![v.as_str().unwrap_or_default().to_string()],
                });
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let op = match e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => {
                        return Err(ParseError(format!(
                            "{other:?} is not a valid label selector operator"
                        )));
                    }
                };
                requirements.push(Requirement { key, op, values });
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }
}

impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r.op {
                Operator::Equals => format!("{}={}", r.key, r.values.join(",")),
                Operator::NotEquals => format!("{}!={}", r.key, r.values.join(",")),
                Operator::In => format!("{} in ({})", r.key, r.values.join(",")),
                Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Operator::Exists => r.key.clone(),
                Operator::DoesNotExist => format!("!{}", r.key),
                Operator::GreaterThan => format!("{}>{}", r.key, r.values.join(",")),
                Operator::LessThan => format!("{}<{}", r.key, r.values.join(",")),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// `metadata.labels` as a map (empty when absent).
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

fn is_ident_byte(b: u8) -> bool {
    !matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b',' | b'=' | b'!' | b'(' | b')' | b'<' | b'>'
    )
}

impl Lexer<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, tok: &[u8]) -> bool {
        if self.s[self.pos..].starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while self.pos < self.s.len() && is_ident_byte(self.s[self.pos]) {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }

    fn peek_token(&self) -> String {
        let rest = &self.s[self.pos..];
        let n = rest
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(rest.len())
            .max(1);
        String::from_utf8_lossy(&rest[..n.min(rest.len())]).into_owned()
    }

    fn requirement(&mut self) -> Result<Requirement, ParseError> {
        self.skip_ws();
        if self.eat(b"!") {
            self.skip_ws();
            let key = self.ident();
            validate_key(&key)?;
            return Ok(Requirement {
                key,
                op: Operator::DoesNotExist,
                values: vec![],
            });
        }
        let key = self.ident();
        if key.is_empty() {
            return Err(ParseError(format!(
                "found '{}', expected: !, identifier, or 'end of string'",
                self.peek_token()
            )));
        }
        validate_key(&key)?;
        self.skip_ws();
        if self.at_end() || self.s[self.pos] == b',' {
            return Ok(Requirement {
                key,
                op: Operator::Exists,
                values: vec![],
            });
        }
        let op = if self.eat(b"==") || self.eat(b"=") {
            Operator::Equals
        } else if self.eat(b"!=") {
            Operator::NotEquals
        } else if self.eat(b">") {
            Operator::GreaterThan
        } else if self.eat(b"<") {
            Operator::LessThan
        } else {
            let word = self.ident();
            match word.as_str() {
                "in" => Operator::In,
                "notin" => Operator::NotIn,
                _ => {
                    return Err(ParseError(format!(
                        "found '{word}', expected: in, notin, =, ==, !=, gt, lt"
                    )));
                }
            }
        };
        self.skip_ws();
        let values = match op {
            Operator::In | Operator::NotIn => {
                if !self.eat(b"(") {
                    return Err(ParseError(format!(
                        "found '{}', expected: '('",
                        self.peek_token()
                    )));
                }
                let mut vals = Vec::new();
                loop {
                    self.skip_ws();
                    let v = self.ident();
                    self.skip_ws();
                    if !v.is_empty() || self.s.get(self.pos) == Some(&b',') {
                        validate_value(&v)?;
                        vals.push(v);
                    }
                    if self.eat(b")") {
                        break;
                    }
                    if !self.eat(b",") {
                        return Err(ParseError(format!(
                            "found '{}', expected: ',', or ')'",
                            self.peek_token()
                        )));
                    }
                }
                vals.sort();
                vals.dedup();
                vals
            }
            _ => {
                let v = self.ident();
                if matches!(op, Operator::GreaterThan | Operator::LessThan)
                    && v.parse::<i64>().is_err()
                {
                    return Err(ParseError(
                        "for 'Gt', 'Lt' operators, the value must be an integer".into(),
                    ));
                }
                validate_value(&v)?;
                vec![v]
            }
        };
        Ok(Requirement { key, op, values })
    }
}

fn validate_key(key: &str) -> Result<(), ParseError> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(ParseError(format!(
            "unable to parse requirement: invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )))
    }
}

fn validate_value(v: &str) -> Result<(), ParseError> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && v.as_bytes()[0].is_ascii_alphanumeric()
            && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ParseError(format!(
            "unable to parse requirement: invalid label value: {v:?}: at key: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_as_upstream() {
        let web = l(&[("app", "nginx"), ("tier", "web")]);
        let db = l(&[("app", "pg"), ("tier", "db"), ("legacy", "")]);
        let none = l(&[]);
        let cases: &[(&str, [bool; 3])] = &[
            ("", [true, true, true]),
            ("app=nginx", [true, false, false]),
            ("app==nginx", [true, false, false]),
            ("app!=nginx", [false, true, true]),
            ("tier in (web, db)", [true, true, false]),
            ("tier notin (web)", [false, true, true]),
            ("legacy", [false, true, false]),
            ("!legacy", [true, false, true]),
            ("app=nginx,tier=web", [true, false, false]),
            ("app=nginx, tier=db", [false, false, false]),
            ("legacy=", [false, true, false]),
        ];
        for (sel, want) in cases {
            let s = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            let got = [s.matches(&web), s.matches(&db), s.matches(&none)];
            assert_eq!(&got, want, "selector {sel:?}");
        }
    }

    #[test]
    fn gt_and_lt_compare_integers() {
        let s = LabelSelector::parse("gen>3").unwrap();
        assert!(s.matches(&l(&[("gen", "4")])));
        assert!(!s.matches(&l(&[("gen", "3")])));
        assert!(LabelSelector::parse("gen<x").is_err());
    }

    #[test]
    fn malformed_selectors_are_errors_not_panics() {
        for bad in [
            "app in (a",
            "app in a",
            "=x",
            "app=(",
            "a b",
            "!",
            "app=nginx,",
            "bad key=1",
            "ä=1",
        ] {
            assert!(
                LabelSelector::parse(bad).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn structured_selectors_convert() {
        let sel = serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        });
        let s = LabelSelector::from_structured(Some(&sel)).unwrap();
        assert!(s.matches(&l(&[("app", "web")])));
        assert!(!s.matches(&l(&[("app", "web"), ("tier", "db")])));
        assert!(
            !LabelSelector::from_structured(None)
                .unwrap()
                .matches(&l(&[]))
        );
        assert!(
            LabelSelector::from_structured(Some(&serde_json::json!({})))
                .unwrap()
                .matches(&l(&[]))
        );
    }
}
