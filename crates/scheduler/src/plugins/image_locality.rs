//! ImageLocality: nodes that already have the pod's images score higher, weighted by image
//! size and by how many nodes have them (so one node holding a popular image does not
//! attract every pod).

use std::sync::Arc;

use crate::framework::types::normalized_image_name;
use crate::framework::*;

pub const NAME: &str = "ImageLocality";
const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;
const STATE_KEY: &str = "PreScoreImageLocality";

pub struct ImageLocality;

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
}

#[derive(Clone)]
struct State {
    total_nodes: usize,
    /// (normalized image, nodes having it)
    images: Vec<(String, usize)>,
}

impl PreScorePlugin for ImageLocality {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        let Some(spec) = pod.pod.spec.as_ref() else {
            return Status::skip();
        };
        let images: Vec<(String, usize)> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .filter_map(|c| c.image.as_deref())
            .map(|i| {
                let n = normalized_image_name(i);
                let count = snapshot.image_nodes.get(&n).copied().unwrap_or(0);
                (n, count)
            })
            .collect();
        if images.iter().all(|(_, c)| *c == 0) {
            // No node has any of the images: every node scores the same.
            return Status::skip();
        }
        state.write(
            STATE_KEY,
            State {
                total_nodes: snapshot.len(),
                images,
            },
        );
        Status::success()
    }
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(st) = state.read::<State>(STATE_KEY) else {
            return (0, Status::success());
        };
        let mut sum = 0i64;
        for (img, count) in &st.images {
            if let Some(s) = node.image_states.get(img) {
                sum += (s.size as f64 * *count as f64 / st.total_nodes.max(1) as f64) as i64;
            }
        }
        let max = MAX_CONTAINER_THRESHOLD * st.images.len() as i64;
        let sum = sum.clamp(MIN_THRESHOLD, max.max(MIN_THRESHOLD));
        (
            MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD).max(1),
            Status::success(),
        )
    }
}

pub fn new() -> PluginInstance {
    let p = Arc::new(ImageLocality);
    PluginInstance {
        pre_score: Some(p.clone()),
        score: Some(p),
        ..PluginInstance::new(NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn nodes_with_the_image_score_by_size_and_spread() {
        let p = pod("p").image("nginx").obj();
        let nodes = vec![
            node("with").image("nginx:latest", 500 * MB).info(),
            node("without").info(),
        ];
        let snap = Snapshot::from_nodes(nodes);
        let mut st = CycleState::new();
        assert!(
            ImageLocality
                .pre_score(&mut st, &p, &snap.nodes, &snap)
                .is_success()
        );
        let with = ImageLocality.score(&st, &p, &snap.nodes[0]).0;
        let without = ImageLocality.score(&st, &p, &snap.nodes[1]).0;
        // 500MB on half the nodes counts as 250MB: (250-23)/(1000-23) of 100.
        assert_eq!(
            with,
            100 * (250 * MB - MIN_THRESHOLD) / (MAX_CONTAINER_THRESHOLD - MIN_THRESHOLD)
        );
        assert_eq!(without, 0);
    }
}
