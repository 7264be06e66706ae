//! DefaultPreemption: when no node fits, find nodes where evicting lower-priority pods would
//! let the pod in, pick victims as upstream does (remove every lower-priority pod, then
//! reprieve as many as possible from the most important down, PDB-violating ones first),
//! choose the node by upstream's ordering, mark and delete the victims (each with its own
//! grace period), and nominate the node.

use std::sync::Arc;

use async_trait::async_trait;
use ferrokube_client::events::EventType;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};

use crate::framework::*;
use crate::util::{clear_nominated_node_name, fit_error_message, importance_order};

pub const NAME: &str = "DefaultPreemption";
pub const MSG_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const MSG_NO_VICTIMS: &str = "No preemption victims found for incoming pod";
const MIN_CANDIDATE_NODES_PERCENTAGE: usize = 10;
const MIN_CANDIDATE_NODES_ABSOLUTE: usize = 100;

pub struct DefaultPreemption {
    handle: Arc<Handle>,
    min_candidate_nodes_percentage: usize,
    min_candidate_nodes_absolute: usize,
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
}

/// A node where preemption would work, with its victims (most important first).
#[derive(Clone, Debug)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
    pub pdb_violations: usize,
}

fn terminating_by_preemption(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "DisruptionTarget"
                        && c.status == "True"
                        && c.reason.as_deref() == Some("PreemptionByScheduler")
                })
            })
}

pub struct Pdb {
    namespace: String,
    selector: crate::framework::selector::Selector,
    allowed: i32,
    disrupted: std::collections::HashSet<String>,
}

impl DefaultPreemption {
    fn eligible(
        &self,
        pod: &PodInfo,
        statuses: &NodeToStatus,
        snapshot: &Snapshot,
    ) -> Result<(), String> {
        if self.handle.preemption_policy(&pod.pod) == "Never" {
            return Err("not eligible due to preemptionPolicy=Never.".into());
        }
        let nominated = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .unwrap_or("");
        if !nominated.is_empty() {
            if statuses.get(nominated).code == Code::UnschedulableAndUnresolvable {
                return Ok(());
            }
            if let Some(n) = snapshot.get(nominated)
                && n.pods
                    .iter()
                    .any(|p| p.priority < pod.priority && terminating_by_preemption(&p.pod))
            {
                return Err("not eligible due to a terminating pod on the nominated node.".into());
            }
        }
        Ok(())
    }

    fn pdbs(&self) -> Vec<Pdb> {
        self.handle
            .listers
            .pdbs
            .list()
            .iter()
            .map(|p| Pdb {
                namespace: p.metadata.namespace.clone().unwrap_or_default(),
                selector: crate::framework::selector::Selector::from_label_selector(
                    p.spec.as_ref().and_then(|s| s.selector.as_ref()),
                ),
                allowed: p
                    .status
                    .as_ref()
                    .map(|s| s.disruptions_allowed)
                    .unwrap_or(0),
                disrupted: p
                    .status
                    .as_ref()
                    .and_then(|s| s.disrupted_pods.as_ref())
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// filterPodsWithPDBViolation: (violating, non-violating), keeping the order.
    fn split_by_pdb(pods: &[Arc<PodInfo>], pdbs: &[Pdb]) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
        let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.allowed).collect();
        let (mut violating, mut ok) = (Vec::new(), Vec::new());
        for p in pods {
            let mut violates = false;
            if !p.labels().is_empty() {
                for (i, pdb) in pdbs.iter().enumerate() {
                    if pdb.namespace != p.namespace()
                        || matches!(&pdb.selector, crate::framework::selector::Selector::All(r) if r.is_empty())
                        || !pdb.selector.matches(p.labels())
                        || pdb.disrupted.contains(p.name())
                    {
                        continue;
                    }
                    allowed[i] -= 1;
                    if allowed[i] < 0 {
                        violates = true;
                    }
                }
            }
            if violates {
                violating.push(p.clone());
            } else {
                ok.push(p.clone());
            }
        }
        (violating, ok)
    }

    /// SelectVictimsOnNode.
    pub fn select_victims(
        &self,
        fw: &Framework,
        state: &mut CycleState,
        pod: &PodInfo,
        node: &mut NodeInfo,
        pdbs: &[Pdb],
    ) -> Result<(Vec<Arc<PodInfo>>, usize), Status> {
        let mut potential: Vec<Arc<PodInfo>> = node
            .pods
            .iter()
            .filter(|p| p.priority < pod.priority)
            .cloned()
            .collect();
        for p in &potential {
            node.remove_pod(&p.key);
            let s = fw.run_pre_filter_remove_pod(state, pod, p, node);
            if !s.is_success() {
                return Err(s);
            }
        }
        if potential.is_empty() {
            return Err(Status::unresolvable(MSG_NO_VICTIMS));
        }
        let s = fw.run_filter_with_nominated(state, pod, node);
        if !s.is_success() {
            return Err(s);
        }
        potential.sort_by(|a, b| importance_order(a, b));
        let (violating, ok) = Self::split_by_pdb(&potential, pdbs);
        let mut victims = Vec::new();
        let mut violations = 0;
        let mut reprieve = |p: &Arc<PodInfo>,
                            node: &mut NodeInfo,
                            state: &mut CycleState|
         -> Result<bool, Status> {
            node.add_pod(p.clone());
            let s = fw.run_pre_filter_add_pod(state, pod, p, node);
            if !s.is_success() {
                return Err(s);
            }
            let fits = fw.run_filter_with_nominated(state, pod, node).is_success();
            if !fits {
                node.remove_pod(&p.key);
                let s = fw.run_pre_filter_remove_pod(state, pod, p, node);
                if !s.is_success() {
                    return Err(s);
                }
                victims.push(p.clone());
            }
            Ok(fits)
        };
        for p in &violating {
            if !reprieve(p, node, state)? {
                violations += 1;
            }
        }
        for p in &ok {
            reprieve(p, node, state)?;
        }
        if !violating.is_empty() && !ok.is_empty() {
            victims.sort_by(|a, b| importance_order(a, b));
        }
        Ok((victims, violations))
    }

    /// DryRunPreemption over the nodes where preemption might help, from a random offset,
    /// until enough candidates are found.
    fn find_candidates(
        &self,
        fw: &Framework,
        state: &CycleState,
        pod: &PodInfo,
        statuses: &NodeToStatus,
        snapshot: &Snapshot,
    ) -> (Vec<Candidate>, NodeToStatus) {
        let mut out = NodeToStatus {
            absent: Status::unresolvable(MSG_NOT_HELPFUL),
            ..Default::default()
        };
        let potential: Vec<&Arc<NodeInfo>> = snapshot
            .nodes
            .iter()
            .filter(|n| {
                if statuses.get(n.name()).code == Code::UnschedulableAndUnresolvable {
                    out.map
                        .insert(n.name().to_string(), Status::unresolvable(MSG_NOT_HELPFUL));
                    false
                } else {
                    true
                }
            })
            .collect();
        if potential.is_empty() {
            return (Vec::new(), out);
        }
        let n = potential.len();
        let want = (n * self.min_candidate_nodes_percentage / 100)
            .max(self.min_candidate_nodes_absolute)
            .min(n);
        let offset = crate::util::random_below(n);
        let pdbs = self.pdbs();
        let (mut non_violating, mut violating) = (Vec::new(), Vec::new());
        for i in 0..n {
            let info = potential[(offset + i) % n];
            let mut copy = (**info).clone();
            let mut st = state.clone();
            match self.select_victims(fw, &mut st, pod, &mut copy, &pdbs) {
                Ok((victims, _)) if victims.is_empty() => {
                    out.map.insert(
                        info.name().to_string(),
                        Status::error(format!(
                            "expected at least one victim pod on node {:?}",
                            info.name()
                        )),
                    );
                }
                Ok((victims, v)) => {
                    let c = Candidate {
                        node: info.name().to_string(),
                        victims,
                        pdb_violations: v,
                    };
                    if v == 0 {
                        non_violating.push(c);
                    } else {
                        violating.push(c);
                    }
                    if !non_violating.is_empty() && non_violating.len() + violating.len() >= want {
                        break;
                    }
                }
                Err(s) => {
                    out.map.insert(info.name().to_string(), s);
                }
            }
        }
        non_violating.extend(violating);
        (non_violating, out)
    }

    async fn preempt_victim(
        &self,
        pod: &PodInfo,
        victim: &Arc<PodInfo>,
        node: &str,
    ) -> Result<(), String> {
        let h = &self.handle;
        if h.waiting.reject(victim.uid(), NAME, "preempted") {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(h.client.clone(), victim.namespace());
        let scheduler = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.clone())
            .unwrap_or_else(|| crate::DEFAULT_SCHEDULER_NAME.into());
        let now = jiff::Timestamp::now().to_string();
        let patch = serde_json::json!({"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
            "message": format!("{scheduler}: preempting to accommodate a higher priority pod"),
            "lastTransitionTime": now}]}});
        match api
            .patch_status(
                victim.name(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(format!("marking victim {}: {e}", victim.key)),
        }
        match api.delete(victim.name(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(format!("deleting victim {}: {e}", victim.key)),
        }
        if let Some(r) = &h.recorder {
            r.record(
                victim.pod.as_ref(),
                EventType::Normal,
                "Preempted",
                &format!("Preempted by pod {} on node {}", pod.uid(), node),
            );
        }
        Ok(())
    }
}

/// pickOneNodeForPreemption: fewest PDB violations, then the lowest highest-priority victim,
/// the smallest sum of priorities, the fewest victims, the latest start of the
/// highest-priority victims, then the first.
pub fn pick_one_node(candidates: &[Candidate]) -> Option<&Candidate> {
    if candidates.is_empty() {
        return None;
    }
    let mut idx: Vec<usize> = (0..candidates.len()).collect();
    let keep_min = |idx: &mut Vec<usize>, f: &dyn Fn(&Candidate) -> i128| {
        let best = idx.iter().map(|&i| f(&candidates[i])).min().unwrap_or(0);
        idx.retain(|&i| f(&candidates[i]) == best);
    };
    keep_min(&mut idx, &|c| c.pdb_violations as i128);
    keep_min(&mut idx, &|c| {
        c.victims
            .first()
            .map(|v| v.priority as i128)
            .unwrap_or(i32::MIN as i128)
    });
    keep_min(&mut idx, &|c| {
        c.victims
            .iter()
            .map(|v| v.priority as i128 + i32::MAX as i128 + 1)
            .sum()
    });
    keep_min(&mut idx, &|c| c.victims.len() as i128);
    // Latest earliest-start among the highest-priority victims wins.
    keep_min(&mut idx, &|c| {
        let Some(top) = c.victims.first().map(|v| v.priority) else {
            return 0;
        };
        let earliest = c
            .victims
            .iter()
            .filter(|v| v.priority == top)
            .filter_map(|v| crate::util::start_time(&v.pod))
            .min()
            .unwrap_or(i128::MAX);
        -earliest
    });
    idx.first().map(|&i| &candidates[i])
}

#[async_trait]
impl PostFilterPlugin for DefaultPreemption {
    async fn post_filter(
        &self,
        fw: &Framework,
        state: &CycleState,
        pod: &Arc<PodInfo>,
        statuses: &NodeToStatus,
        snapshot: &Snapshot,
    ) -> (Option<PostFilterResult>, Status) {
        if let Err(msg) = self.eligible(pod, statuses, snapshot) {
            return (None, Status::unschedulable(format!("preemption: {msg}")));
        }
        let (candidates, node_statuses) = self.find_candidates(fw, state, pod, statuses, snapshot);
        if candidates.is_empty() {
            if node_statuses
                .map
                .values()
                .all(|s| s.reasons == [MSG_NOT_HELPFUL])
            {
                clear_nominated_node_name(&self.handle.client, &pod.pod).await;
            }
            let msg = fit_error_message(snapshot.len(), "", &node_statuses, "");
            return (
                Some(PostFilterResult {
                    nominated_node_name: Some(String::new()),
                }),
                Status::unschedulable(format!("preemption: {msg}")),
            );
        }
        let Some(best) = pick_one_node(&candidates) else {
            return (
                None,
                Status::unschedulable("preemption: no candidate node for preemption"),
            );
        };
        let results = futures::future::join_all(
            best.victims
                .iter()
                .map(|v| self.preempt_victim(pod, v, &best.node)),
        )
        .await;
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            return (None, Status::error(e));
        }
        // Lower-priority pods nominated to this node may no longer fit there.
        for p in self.handle.nominator.for_node(&best.node) {
            if p.priority < pod.priority {
                self.handle.nominator.remove(&p.key);
                clear_nominated_node_name(&self.handle.client, &p.pod).await;
            }
        }
        (
            Some(PostFilterResult {
                nominated_node_name: Some(best.node.clone()),
            }),
            Status::success(),
        )
    }
}

/// DefaultPreemptionArgs: minCandidateNodesPercentage (10), minCandidateNodesAbsolute (100).
pub fn new(args: &serde_json::Value, handle: &Arc<Handle>) -> Result<PluginInstance, String> {
    let get = |k: &str, d: usize| {
        args.get(k)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .unwrap_or(d)
    };
    let pct = get(
        "minCandidateNodesPercentage",
        MIN_CANDIDATE_NODES_PERCENTAGE,
    );
    if pct > 100 {
        return Err(format!(
            "minCandidateNodesPercentage: Invalid value: {pct}: not in valid range [0, 100]"
        ));
    }
    let p = Arc::new(DefaultPreemption {
        handle: handle.clone(),
        min_candidate_nodes_percentage: pct,
        min_candidate_nodes_absolute: get(
            "minCandidateNodesAbsolute",
            MIN_CANDIDATE_NODES_ABSOLUTE,
        ),
    });
    Ok(PluginInstance {
        post_filter: Some(p),
        events: &[
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::AssignedPodUpdate,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
        ],
        ..PluginInstance::new(NAME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins;
    use crate::testing::*;

    fn fw(h: &Arc<Handle>) -> Framework {
        plugins::build_default_framework(h).unwrap()
    }

    fn plugin(h: &Arc<Handle>) -> DefaultPreemption {
        DefaultPreemption {
            handle: h.clone(),
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }

    #[test]
    fn victims_are_the_fewest_lower_priority_pods_that_make_room() {
        let h = handle();
        let fw = fw(&h);
        let pl = plugin(&h);
        let incoming = pod("hi").req("2", "").priority(100).obj();
        let mut n = node("n")
            .allocatable("4", "8Gi", "110")
            .with_pod(pod("low1").req("1", "").priority(1).obj())
            .with_pod(pod("low2").req("1", "").priority(2).obj())
            .with_pod(pod("mid").req("2", "").priority(50).obj())
            .with_pod(pod("higher").req("0", "").priority(200).obj())
            .info();
        let mut st = CycleState::new();
        let snap = Snapshot::from_nodes(vec![n.clone()]);
        fw.run_pre_filter(&mut st, &incoming, &snap);
        let (victims, v) = pl
            .select_victims(&fw, &mut st, &incoming, &mut n, &[])
            .unwrap();
        assert_eq!(v, 0);
        // mid (50) is reprieved first and fits; then low2 fits too; low1 must go... or the
        // reverse: reprieve goes from most important down.
        let names: Vec<&str> = victims.iter().map(|p| p.name()).collect();
        assert_eq!(names, vec!["low2", "low1"]);
    }

    #[test]
    fn nodes_without_lower_priority_pods_report_no_victims() {
        let h = handle();
        let fw = fw(&h);
        let pl = plugin(&h);
        let incoming = pod("p").req("3", "").obj();
        let mut n = node("n").with_pod(pod("a").req("2", "").obj()).info();
        let mut st = CycleState::new();
        let err = pl
            .select_victims(&fw, &mut st, &incoming, &mut n, &[])
            .unwrap_err();
        assert_eq!(err.message(), MSG_NO_VICTIMS);
    }

    #[test]
    fn candidate_choice_follows_upstream_order() {
        let v = |name: &str, prio: i32| pod(name).priority(prio).obj();
        let cands = vec![
            Candidate {
                node: "a".into(),
                victims: vec![v("x", 10)],
                pdb_violations: 1,
            },
            Candidate {
                node: "b".into(),
                victims: vec![v("y", 10), v("z", 5)],
                pdb_violations: 0,
            },
            Candidate {
                node: "c".into(),
                victims: vec![v("w", 10)],
                pdb_violations: 0,
            },
        ];
        assert_eq!(pick_one_node(&cands).unwrap().node, "c");
        let cands = vec![
            Candidate {
                node: "a".into(),
                victims: vec![v("x", 20)],
                pdb_violations: 0,
            },
            Candidate {
                node: "b".into(),
                victims: vec![v("y", 10), v("z", 9)],
                pdb_violations: 0,
            },
        ];
        assert_eq!(
            pick_one_node(&cands).unwrap().node,
            "b",
            "lowest highest-priority victim"
        );
    }

    #[tokio::test]
    async fn preemption_policy_never_is_not_eligible() {
        let h = handle();
        let fw = fw(&h);
        let pl = plugin(&h);
        let mut raw = pod("p").raw();
        raw.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        let p = PodInfo::new(Arc::new(raw));
        let snap = Snapshot::from_nodes(vec![node("n").info()]);
        let (_, s) = pl
            .post_filter(&fw, &CycleState::new(), &p, &NodeToStatus::default(), &snap)
            .await;
        assert_eq!(
            s.message(),
            "preemption: not eligible due to preemptionPolicy=Never."
        );
    }
}
