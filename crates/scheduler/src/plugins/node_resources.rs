//! NodeResourcesFit and NodeResourcesBalancedAllocation: a pod fits a node when its requests
//! (containers, init containers and sidecars by upstream's max rule, overhead) fit in the
//! node's allocatable minus what its pods request, and the node has room for one more pod.
//! Scoring strategies: LeastAllocated (default), MostAllocated, RequestedToCapacityRatio;
//! BalancedAllocation favours nodes whose resource fractions stay even.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;

use crate::framework::types::pod_requests;
use crate::framework::*;

pub const FIT_NAME: &str = "NodeResourcesFit";
pub const BALANCED_NAME: &str = "NodeResourcesBalancedAllocation";

#[derive(Clone, Debug, Deserialize)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default = "one")]
    pub weight: i64,
}

fn one() -> i64 {
    1
}

fn default_resources() -> Vec<ResourceSpec> {
    vec![
        ResourceSpec {
            name: "cpu".into(),
            weight: 1,
        },
        ResourceSpec {
            name: "memory".into(),
            weight: 1,
        },
    ]
}

#[derive(Clone, Debug, Deserialize)]
pub struct UtilizationShapePoint {
    pub utilization: i64,
    pub score: i64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestedToCapacityRatio {
    #[serde(default)]
    pub shape: Vec<UtilizationShapePoint>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoringStrategy {
    #[serde(rename = "type", default = "least")]
    pub type_: String,
    #[serde(default = "default_resources")]
    pub resources: Vec<ResourceSpec>,
    #[serde(default)]
    pub requested_to_capacity_ratio: RequestedToCapacityRatio,
}

fn least() -> String {
    "LeastAllocated".into()
}

impl Default for ScoringStrategy {
    fn default() -> Self {
        ScoringStrategy {
            type_: least(),
            resources: default_resources(),
            requested_to_capacity_ratio: RequestedToCapacityRatio::default(),
        }
    }
}

/// NodeResourcesFitArgs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FitArgs {
    #[serde(default)]
    pub ignored_resources: Vec<String>,
    #[serde(default)]
    pub ignored_resource_groups: Vec<String>,
    #[serde(default)]
    pub scoring_strategy: Option<ScoringStrategy>,
}

pub struct Fit {
    ignored: HashSet<String>,
    ignored_groups: HashSet<String>,
    strategy: ScoringStrategy,
}

impl Plugin for Fit {
    fn name(&self) -> &'static str {
        FIT_NAME
    }
}

/// One resource that does not fit, with upstream's reason text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsufficientResource {
    pub resource: String,
    pub reason: String,
}

impl Fit {
    fn ignored(&self, name: &str) -> bool {
        if self.ignored.contains(name) {
            return true;
        }
        let group = name.split_once('/').map(|(g, _)| g).unwrap_or("");
        !group.is_empty() && self.ignored_groups.contains(group)
    }

    /// fitsRequest.
    pub fn insufficient(&self, req: &Resource, node: &NodeInfo) -> Vec<InsufficientResource> {
        let mut out = Vec::new();
        if node.pods.len() as i64 + 1 > node.allocatable.allowed_pod_number {
            out.push(InsufficientResource {
                resource: "pods".into(),
                reason: "Too many pods".into(),
            });
        }
        if req.is_zero_request() {
            return out;
        }
        let a = &node.allocatable;
        let r = &node.requested;
        if req.milli_cpu > 0 && req.milli_cpu > a.milli_cpu - r.milli_cpu {
            out.push(InsufficientResource {
                resource: "cpu".into(),
                reason: "Insufficient cpu".into(),
            });
        }
        if req.memory > 0 && req.memory > a.memory - r.memory {
            out.push(InsufficientResource {
                resource: "memory".into(),
                reason: "Insufficient memory".into(),
            });
        }
        if req.ephemeral_storage > 0
            && req.ephemeral_storage > a.ephemeral_storage - r.ephemeral_storage
        {
            out.push(InsufficientResource {
                resource: "ephemeral-storage".into(),
                reason: "Insufficient ephemeral-storage".into(),
            });
        }
        for (name, v) in &req.scalar {
            if *v == 0 || self.ignored(name) {
                continue;
            }
            if *v > a.scalar(name) - r.scalar(name) {
                out.push(InsufficientResource {
                    resource: name.clone(),
                    reason: format!("Insufficient {name}"),
                });
            }
        }
        out
    }
}

impl FilterPlugin for Fit {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let ins = self.insufficient(&pod.requests, node);
        if ins.is_empty() {
            return Status::success();
        }
        Status::with_reasons(
            Code::Unschedulable,
            ins.into_iter().map(|i| i.reason).collect(),
        )
    }
}

/// (allocatable, requested-with-pod) of one resource for scoring. `use_requested` takes the
/// real requests; otherwise CPU and memory use the non-zero defaults.
fn alloc_and_request(
    node: &NodeInfo,
    pod: &PodInfo,
    name: &str,
    use_requested: bool,
) -> (i64, i64) {
    let alloc = node.allocatable.get(name);
    if alloc == 0 {
        return (0, 0);
    }
    let (node_req, pod_req) = match name {
        "cpu" | "memory" if !use_requested => (&node.non_zero_requested, &pod.non_zero_requests),
        _ => (&node.requested, &pod.requests),
    };
    let req = if name == "pods" {
        node.pods.len() as i64 + 1
    } else {
        node_req.get(name) + pod_req.get(name)
    };
    (alloc, req)
}

fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

fn broken_linear(shape: &[(i64, i64)], p: i64) -> i64 {
    for (i, &(u, s)) in shape.iter().enumerate() {
        if p <= u {
            if i == 0 {
                return s;
            }
            let (pu, ps) = shape[i - 1];
            return ps + (s - ps) * (p - pu) / (u - pu);
        }
    }
    shape.last().map(|&(_, s)| s).unwrap_or(0)
}

impl ScorePlugin for Fit {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let mut total = 0i64;
        let mut weights = 0i64;
        let shape: Vec<(i64, i64)> = self
            .strategy
            .requested_to_capacity_ratio
            .shape
            .iter()
            .map(|p| (p.utilization, p.score * MAX_NODE_SCORE / 10))
            .collect();
        let ratio = self.strategy.type_ == "RequestedToCapacityRatio";
        for r in &self.strategy.resources {
            let (alloc, req) = alloc_and_request(node, pod, &r.name, false);
            if alloc == 0 {
                continue;
            }
            let s = match self.strategy.type_.as_str() {
                "MostAllocated" => most_requested_score(req, alloc),
                "RequestedToCapacityRatio" => {
                    if req > alloc {
                        broken_linear(&shape, 100)
                    } else {
                        broken_linear(&shape, req * 100 / alloc)
                    }
                }
                _ => least_requested_score(req, alloc),
            };
            total += s * r.weight;
            weights += r.weight;
        }
        if weights == 0 {
            return (0, Status::success());
        }
        let s = if ratio {
            (total as f64 / weights as f64).round() as i64
        } else {
            total / weights
        };
        (s, Status::success())
    }
}

pub fn new_fit(args: &serde_json::Value) -> Result<PluginInstance, String> {
    let a: FitArgs = if args.is_null() {
        FitArgs::default()
    } else {
        serde_json::from_value(args.clone()).map_err(|e| e.to_string())?
    };
    let strategy = a.scoring_strategy.unwrap_or_default();
    match strategy.type_.as_str() {
        "LeastAllocated" | "MostAllocated" => {}
        "RequestedToCapacityRatio" if !strategy.requested_to_capacity_ratio.shape.is_empty() => {}
        t => return Err(format!("scoringStrategy.type: Unsupported value: {t:?}")),
    }
    let p = Arc::new(Fit {
        ignored: a.ignored_resources.into_iter().collect(),
        ignored_groups: a.ignored_resource_groups.into_iter().collect(),
        strategy,
    });
    Ok(PluginInstance {
        filter: Some(p.clone()),
        score: Some(p),
        events: &[
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::AssignedPodUpdate,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::UnscheduledPodUpdate,
        ],
        ..PluginInstance::new(FIT_NAME)
    })
}

pub struct BalancedAllocation {
    resources: Vec<ResourceSpec>,
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        BALANCED_NAME
    }
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &[Arc<NodeInfo>],
        _: &Snapshot,
    ) -> Status {
        // Best-effort pods (no requests at all) do not change any node's balance.
        let r = pod_requests(&pod.pod, false);
        if self.resources.iter().all(|res| r.get(&res.name) == 0) {
            return Status::skip();
        }
        Status::success()
    }
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let mut fractions = Vec::with_capacity(self.resources.len());
        for r in &self.resources {
            let (alloc, req) = alloc_and_request(node, pod, &r.name, true);
            if alloc == 0 {
                continue;
            }
            fractions.push((req as f64 / alloc as f64).min(1.0));
        }
        let std = match fractions.len() {
            0 | 1 => 0.0,
            2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
            n => {
                let mean = fractions.iter().sum::<f64>() / n as f64;
                (fractions
                    .iter()
                    .map(|f| (f - mean) * (f - mean))
                    .sum::<f64>()
                    / n as f64)
                    .sqrt()
            }
        };
        (
            ((1.0 - std) * MAX_NODE_SCORE as f64) as i64,
            Status::success(),
        )
    }
}

pub fn new_balanced(args: &serde_json::Value) -> Result<PluginInstance, String> {
    let resources = match args.get("resources") {
        Some(r) => serde_json::from_value(r.clone()).map_err(|e| e.to_string())?,
        None => default_resources(),
    };
    let p = Arc::new(BalancedAllocation { resources });
    Ok(PluginInstance {
        pre_score: Some(p.clone()),
        score: Some(p),
        ..PluginInstance::new(BALANCED_NAME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn fit() -> Fit {
        Fit {
            ignored: HashSet::new(),
            ignored_groups: HashSet::new(),
            strategy: ScoringStrategy::default(),
        }
    }

    #[test]
    fn filter_reports_every_insufficient_resource() {
        let small = || node("n").allocatable("2", "4Gi", "2");
        let cases: Vec<(&str, Arc<PodInfo>, NodeInfo, Vec<&str>)> = vec![
            (
                "fits",
                pod("p").req("1", "1Gi").obj(),
                small().info(),
                vec![],
            ),
            (
                "too much cpu",
                pod("p").req("3", "").obj(),
                small().info(),
                vec!["Insufficient cpu"],
            ),
            (
                "cpu used by other pods",
                pod("p").req("1", "").obj(),
                small().with_pod(pod("a").req("1500m", "").obj()).info(),
                vec!["Insufficient cpu"],
            ),
            (
                "cpu and memory",
                pod("p").req("3", "5Gi").obj(),
                small().info(),
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            (
                "pod count",
                pod("p").obj(),
                small()
                    .with_pod(pod("a").obj())
                    .with_pod(pod("b").obj())
                    .info(),
                vec!["Too many pods"],
            ),
            (
                "best effort pod fits a full node",
                pod("p").obj(),
                small().with_pod(pod("a").req("2", "4Gi").obj()).info(),
                vec![],
            ),
        ];
        for (name, p, n, want) in cases {
            let s = fit().filter(&CycleState::new(), &p, &n);
            assert_eq!(s.reasons, want, "{name}");
            if !want.is_empty() {
                assert_eq!(s.code, Code::Unschedulable, "{name}");
            }
        }
    }

    #[test]
    fn least_and_most_allocated_score_as_upstream() {
        // Upstream's example: 4000m/10000 alloc, node requests 0, pod 3000m cpu 5000 mem.
        let n = node("n").allocatable("4", "10000", "110").info();
        let p = pod("p").req("3", "5000").obj();
        let least = fit();
        assert_eq!(least.score(&CycleState::new(), &p, &n).0, (25 + 50) / 2);
        let most = Fit {
            strategy: ScoringStrategy {
                type_: "MostAllocated".into(),
                ..Default::default()
            },
            ..fit()
        };
        assert_eq!(most.score(&CycleState::new(), &p, &n).0, (75 + 50) / 2);
    }

    #[test]
    fn balanced_allocation_prefers_even_fractions() {
        let n = node("n").allocatable("4", "4000", "110").info();
        let even = pod("p").req("2", "2000").obj();
        let skewed = pod("p").req("4", "0").obj();
        let b = BalancedAllocation {
            resources: default_resources(),
        };
        assert_eq!(b.score(&CycleState::new(), &even, &n).0, 100);
        assert_eq!(b.score(&CycleState::new(), &skewed, &n).0, 50);
    }

    #[test]
    fn requested_to_capacity_ratio_follows_the_shape() {
        let shape = [(0, 0), (100, 100)];
        assert_eq!(broken_linear(&shape, 50), 50);
        assert_eq!(broken_linear(&[(0, 100), (100, 0)], 25), 75);
    }
}
