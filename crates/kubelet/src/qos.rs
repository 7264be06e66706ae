//! Quality of service as upstream computes it (Guaranteed, Burstable, BestEffort), and what it
//! means on the node: the pod's cgroup parent, OOM score adjustment, CPU shares and quota.

use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

/// A resource quantity in milli-units (CPU) or bytes (memory); 0 when unset or unparseable.
pub fn milli(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> i64 {
    q.and_then(|q| ferrokube_api::quantity::Quantity::parse(&q.0).ok())
        .map(|q| q.milli_value())
        .unwrap_or(0)
}

pub fn value(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> i64 {
    q.and_then(|q| ferrokube_api::quantity::Quantity::parse(&q.0).ok())
        .map(|q| q.value())
        .unwrap_or(0)
}

fn get<'a>(
    r: &'a Option<ResourceRequirements>,
    which: fn(
        &ResourceRequirements,
    ) -> &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
    name: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    r.as_ref().and_then(|r| which(r).as_ref()?.get(name))
}

pub fn request<'a>(
    c: &'a Container,
    name: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    get(&c.resources, |r| &r.requests, name)
}

pub fn limit<'a>(
    c: &'a Container,
    name: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    get(&c.resources, |r| &r.limits, name)
}

/// Upstream's `GetPodQOS`: only cpu and memory count.
pub fn pod_qos(pod: &Pod) -> QosClass {
    if let Some(q) = pod.status.as_ref().and_then(|s| s.qos_class.as_deref()) {
        match q {
            "Guaranteed" => return QosClass::Guaranteed,
            "Burstable" => return QosClass::Burstable,
            "BestEffort" => return QosClass::BestEffort,
            _ => {}
        }
    }
    compute_qos(pod)
}

pub fn compute_qos(pod: &Pod) -> QosClass {
    let Some(spec) = &pod.spec else {
        return QosClass::BestEffort;
    };
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        for r in ["cpu", "memory"] {
            let req = milli(request(c, r));
            let lim = milli(limit(c, r));
            if req != 0 || lim != 0 {
                any = true;
            }
            if lim == 0 || (req != 0 && req != lim) {
                guaranteed = false;
            }
        }
    }
    if !any {
        QosClass::BestEffort
    } else if guaranteed {
        QosClass::Guaranteed
    } else {
        QosClass::Burstable
    }
}

/// Upstream's OOM score adjustment for a container: Guaranteed -997, BestEffort 1000, Burstable
/// between 2 and 999 by its share of the node's memory. (containerd clamps negative values to
/// its own score with `restrict_oom_score_adj`.)
pub fn oom_score_adj(qos: QosClass, c: &Container, memory_capacity: i64) -> i64 {
    match qos {
        QosClass::Guaranteed => -997,
        QosClass::BestEffort => 1000,
        QosClass::Burstable => {
            let req = value(request(c, "memory"));
            if memory_capacity <= 0 {
                return 999;
            }
            let adj = 1000 - (1000 * req) / memory_capacity;
            adj.clamp(2, 999)
        }
    }
}

/// Upstream's `MilliCPUToShares`: 1024 per CPU, at least 2.
pub fn milli_cpu_to_shares(m: i64) -> i64 {
    if m == 0 {
        return 2;
    }
    (m * 1024 / 1000).max(2)
}

pub const CPU_PERIOD: i64 = 100_000;

/// Upstream's `MilliCPUToQuota` (100 ms period, at least 1 ms); 0 means no quota.
pub fn milli_cpu_to_quota(m: i64) -> i64 {
    if m == 0 {
        return 0;
    }
    (m * CPU_PERIOD / 1000).max(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use std::collections::BTreeMap;

    /// (cpu, memory) requests and limits of each container.
    type Resources<'a> = (Option<(&'a str, &'a str)>, Option<(&'a str, &'a str)>);

    fn pod(resources: Vec<Resources<'_>>) -> Pod {
        let containers = resources
            .into_iter()
            .enumerate()
            .map(|(i, (req, lim))| {
                let m = |p: Option<(&str, &str)>| {
                    p.map(|(cpu, mem)| {
                        BTreeMap::from([
                            ("cpu".to_string(), Quantity(cpu.into())),
                            ("memory".to_string(), Quantity(mem.into())),
                        ])
                    })
                };
                Container {
                    name: format!("c{i}"),
                    resources: Some(ResourceRequirements {
                        requests: m(req),
                        limits: m(lim),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            })
            .collect();
        Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                containers,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn qos_classes_follow_requests_and_limits() {
        assert_eq!(compute_qos(&pod(vec![(None, None)])), QosClass::BestEffort);
        assert_eq!(
            compute_qos(&pod(vec![(Some(("100m", "64Mi")), Some(("100m", "64Mi")))])),
            QosClass::Guaranteed
        );
        assert_eq!(
            compute_qos(&pod(vec![(None, Some(("1", "1Gi")))])),
            QosClass::Guaranteed,
            "limits alone: requests default to them"
        );
        assert_eq!(
            compute_qos(&pod(vec![(Some(("100m", "64Mi")), Some(("200m", "64Mi")))])),
            QosClass::Burstable
        );
        assert_eq!(
            compute_qos(&pod(vec![(Some(("100m", "64Mi")), None), (None, None)])),
            QosClass::Burstable
        );
    }

    #[test]
    fn cpu_and_oom_numbers_match_upstream() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(250), 256);
        assert_eq!(milli_cpu_to_quota(500), 50_000);
        assert_eq!(milli_cpu_to_quota(5), 1000);
        let c = &pod(vec![(Some(("100m", "1Gi")), None)])
            .spec
            .unwrap()
            .containers[0];
        assert_eq!(oom_score_adj(QosClass::Burstable, c, 4 << 30), 750);
        assert_eq!(oom_score_adj(QosClass::BestEffort, c, 4 << 30), 1000);
    }
}
