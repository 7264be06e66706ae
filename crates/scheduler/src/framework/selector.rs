//! Label selectors compiled once per pod (metav1.LabelSelector and v1.NodeSelector), so the
//! per-node checks of a scheduling cycle are plain comparisons.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => Op::Gt,
            "Lt" => Op::Lt,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    pub fn new(key: &str, op: Op, values: &[&str]) -> Self {
        Requirement {
            key: key.into(),
            op,
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Matches a value looked up by key (labels, or the fields of matchFields).
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        match self.op {
            Op::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(want)) = (value, self.values.first()) else {
                    return false;
                };
                let (Ok(v), Ok(want)) = (v.parse::<i64>(), want.parse::<i64>()) else {
                    return false;
                };
                if self.op == Op::Gt {
                    v > want
                } else {
                    v < want
                }
            }
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_value(labels.get(&self.key).map(String::as_str))
    }
}

/// A compiled label selector. `Nothing` is what a nil selector means; an empty requirement
/// list matches everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Nothing,
    All(Vec<Requirement>),
}

impl Selector {
    pub fn everything() -> Self {
        Selector::All(Vec::new())
    }

    /// metav1.LabelSelectorAsSelector: nil selects nothing, `{}` everything; an invalid
    /// operator makes the selector select nothing.
    pub fn from_label_selector(sel: Option<&LabelSelector>) -> Self {
        let Some(sel) = sel else {
            return Selector::Nothing;
        };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::In,
                values: vec![v.clone()],
            });
        }
        for e in sel.match_expressions.iter().flatten() {
            let Some(op) = Op::parse(&e.operator).filter(|o| !matches!(o, Op::Gt | Op::Lt)) else {
                return Selector::Nothing;
            };
            reqs.push(Requirement {
                key: e.key.clone(),
                op,
                values: e.values.clone().unwrap_or_default(),
            });
        }
        Selector::All(reqs)
    }

    /// A selector from `key: value` pairs (nodeSelector, Service selectors).
    pub fn from_map(m: &BTreeMap<String, String>) -> Self {
        Selector::All(
            m.iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    op: Op::In,
                    values: vec![v.clone()],
                })
                .collect(),
        )
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::All(reqs) => reqs.iter().all(|r| r.matches(labels)),
        }
    }

    pub fn is_nothing(&self) -> bool {
        matches!(self, Selector::Nothing)
    }
}

/// One compiled node selector term: label expressions and `metadata.name` field expressions.
#[derive(Clone, Debug, Default)]
pub struct NodeTerm {
    pub labels: Vec<Requirement>,
    pub fields: Vec<Requirement>,
    /// A term with a bad operator or no requirements at all matches no node.
    pub matches_nothing: bool,
}

fn compile_reqs(reqs: &[NodeSelectorRequirement], out: &mut Vec<Requirement>) -> bool {
    for r in reqs {
        let Some(op) = Op::parse(&r.operator) else {
            return false;
        };
        let values = r.values.clone().unwrap_or_default();
        // Gt/Lt take exactly one integer; In/NotIn at least one value.
        let valid = match op {
            Op::Gt | Op::Lt => values.len() == 1 && values[0].parse::<i64>().is_ok(),
            Op::In | Op::NotIn => !values.is_empty(),
            _ => values.is_empty(),
        };
        if !valid {
            return false;
        }
        out.push(Requirement {
            key: r.key.clone(),
            op,
            values,
        });
    }
    true
}

impl NodeTerm {
    pub fn compile(t: &NodeSelectorTerm) -> Self {
        let mut term = NodeTerm::default();
        let exprs = t.match_expressions.as_deref().unwrap_or(&[]);
        let fields = t.match_fields.as_deref().unwrap_or(&[]);
        if exprs.is_empty() && fields.is_empty() {
            term.matches_nothing = true;
            return term;
        }
        if !compile_reqs(exprs, &mut term.labels) || !compile_reqs(fields, &mut term.fields) {
            term.matches_nothing = true;
        }
        // Only metadata.name is a supported field.
        if term.fields.iter().any(|f| f.key != "metadata.name") {
            term.matches_nothing = true;
        }
        term
    }

    pub fn matches(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        !self.matches_nothing
            && self.labels.iter().all(|r| r.matches(labels))
            && self.fields.iter().all(|r| r.matches_value(Some(node_name)))
    }
}

/// v1.NodeSelector: the terms are ORed.
#[derive(Clone, Debug, Default)]
pub struct CompiledNodeSelector {
    pub terms: Vec<NodeTerm>,
}

impl CompiledNodeSelector {
    pub fn compile(ns: &NodeSelector) -> Self {
        CompiledNodeSelector {
            terms: ns
                .node_selector_terms
                .iter()
                .map(NodeTerm::compile)
                .collect(),
        }
    }

    pub fn matches(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().any(|t| t.matches(node_name, labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requirements_follow_upstream_operator_semantics() {
        let l = labels(&[("zone", "a"), ("cores", "8")]);
        let cases: &[(Requirement, bool)] = &[
            (Requirement::new("zone", Op::In, &["a", "b"]), true),
            (Requirement::new("zone", Op::In, &["b"]), false),
            (Requirement::new("zone", Op::NotIn, &["b"]), true),
            (Requirement::new("missing", Op::NotIn, &["b"]), true),
            (Requirement::new("zone", Op::Exists, &[]), true),
            (Requirement::new("zone", Op::DoesNotExist, &[]), false),
            (Requirement::new("cores", Op::Gt, &["4"]), true),
            (Requirement::new("cores", Op::Lt, &["4"]), false),
            (Requirement::new("zone", Op::Gt, &["4"]), false),
            (Requirement::new("missing", Op::Lt, &["4"]), false),
        ];
        for (r, want) in cases {
            assert_eq!(r.matches(&l), *want, "{r:?}");
        }
    }

    #[test]
    fn nil_label_selector_selects_nothing_and_empty_selects_everything() {
        assert!(!Selector::from_label_selector(None).matches(&labels(&[])));
        assert!(
            Selector::from_label_selector(Some(&LabelSelector::default())).matches(&labels(&[]))
        );
    }

    #[test]
    fn empty_node_selector_term_matches_no_node() {
        let t = NodeTerm::compile(&NodeSelectorTerm::default());
        assert!(!t.matches("n1", &labels(&[])));
    }
}
