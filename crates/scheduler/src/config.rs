//! The scheduler's configuration file, in the shape of `kubescheduler.config.k8s.io/v1`
//! KubeSchedulerConfiguration: profiles by schedulerName with enabled/disabled plugins per
//! extension point (or `multiPoint`), score weights and plugin args; backoff, the share of
//! nodes to score, and leader election.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::{DEFAULT_SCHEDULER_NAME, Error, Result};

#[derive(Clone, Debug)]
pub struct Profile {
    pub scheduler_name: String,
    /// Extension point (or `multiPoint`) -> `{enabled, disabled}`.
    pub plugins: HashMap<String, Value>,
    /// Plugin name -> args.
    pub plugin_config: Vec<(String, Value)>,
    pub percentage_of_nodes_to_score: Option<i32>,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            scheduler_name: DEFAULT_SCHEDULER_NAME.into(),
            plugins: HashMap::new(),
            plugin_config: Vec::new(),
            percentage_of_nodes_to_score: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    pub leader_elect: bool,
    pub resource_namespace: String,
    pub resource_name: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        LeaderElectionConfig {
            leader_elect: true,
            resource_namespace: "kube-system".into(),
            resource_name: "kube-scheduler".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub profiles: Vec<Profile>,
    /// 0 means adaptive (50% minus 1% per 125 nodes, at least 5%).
    pub percentage_of_nodes_to_score: i32,
    pub pod_initial_backoff: Duration,
    pub pod_max_backoff: Duration,
    /// Pods waiting longer than this in the unschedulable set are retried anyway.
    pub pod_max_in_unschedulable: Duration,
    pub leader_election: LeaderElectionConfig,
    /// Concurrent binding cycles.
    pub parallel_bindings: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            profiles: vec![Profile::default()],
            percentage_of_nodes_to_score: 0,
            pod_initial_backoff: Duration::from_secs(1),
            pod_max_backoff: Duration::from_secs(10),
            pod_max_in_unschedulable: Duration::from_secs(300),
            leader_election: LeaderElectionConfig::default(),
            parallel_bindings: 256,
        }
    }
}

/// `15s`, `1m30s`, `500ms`, as metav1.Duration strings.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.trim().chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let v: f64 = num.parse().ok()?;
        num.clear();
        total += v * match unit.as_str() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(Duration::from_secs_f64(total))
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let v: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind != "KubeSchedulerConfiguration" {
            return Err(format!("kind {kind:?} is not KubeSchedulerConfiguration"));
        }
        let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if !api.starts_with("kubescheduler.config.k8s.io/") {
            return Err(format!(
                "apiVersion {api:?} is not kubescheduler.config.k8s.io/v1"
            ));
        }
        let mut c = Config::default();
        if let Some(p) = v.get("percentageOfNodesToScore").and_then(Value::as_i64) {
            if !(0..=100).contains(&p) {
                return Err(format!(
                    "percentageOfNodesToScore: Invalid value: {p}: not in valid range [0-100]"
                ));
            }
            c.percentage_of_nodes_to_score = p as i32;
        }
        if let Some(s) = v.get("podInitialBackoffSeconds").and_then(Value::as_u64) {
            c.pod_initial_backoff = Duration::from_secs(s);
        }
        if let Some(s) = v.get("podMaxBackoffSeconds").and_then(Value::as_u64) {
            c.pod_max_backoff = Duration::from_secs(s);
        }
        if c.pod_max_backoff < c.pod_initial_backoff {
            return Err("podMaxBackoffSeconds: Invalid value: must be greater than or equal to PodInitialBackoffSeconds".into());
        }
        if let Some(le) = v.get("leaderElection") {
            let l = &mut c.leader_election;
            if let Some(b) = le.get("leaderElect").and_then(Value::as_bool) {
                l.leader_elect = b;
            }
            if let Some(s) = le.get("resourceNamespace").and_then(Value::as_str) {
                l.resource_namespace = s.into();
            }
            if let Some(s) = le.get("resourceName").and_then(Value::as_str) {
                l.resource_name = s.into();
            }
            for (key, field) in [
                ("leaseDuration", &mut l.lease_duration),
                ("renewDeadline", &mut l.renew_deadline),
                ("retryPeriod", &mut l.retry_period),
            ] {
                if let Some(s) = le.get(key).and_then(Value::as_str) {
                    *field = parse_duration(s)
                        .ok_or_else(|| format!("leaderElection.{key}: invalid duration {s:?}"))?;
                }
            }
        }
        if let Some(ps) = v.get("profiles").and_then(Value::as_array) {
            c.profiles.clear();
            for (i, p) in ps.iter().enumerate() {
                let name = p
                    .get("schedulerName")
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_SCHEDULER_NAME)
                    .to_string();
                if c.profiles.iter().any(|x| x.scheduler_name == name) {
                    return Err(format!(
                        "profiles[{i}].schedulerName: Duplicate value: {name:?}"
                    ));
                }
                let plugins = p
                    .get("plugins")
                    .and_then(Value::as_object)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                let plugin_config = p
                    .get("pluginConfig")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|pc| {
                        (
                            pc.get("name")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            pc.get("args").cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect();
                c.profiles.push(Profile {
                    scheduler_name: name,
                    plugins,
                    plugin_config,
                    percentage_of_nodes_to_score: p
                        .get("percentageOfNodesToScore")
                        .and_then(Value::as_i64)
                        .map(|x| x as i32),
                });
            }
            if c.profiles.is_empty() {
                c.profiles.push(Profile::default());
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kube_scheduler_configuration_file_is_read() {
        let c = Config::parse(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
podInitialBackoffSeconds: 2
leaderElection:
  leaderElect: false
  leaseDuration: 5s
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packer
  plugins:
    score:
      disabled: [{name: NodeResourcesBalancedAllocation}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy: {type: MostAllocated}
"#,
        )
        .unwrap();
        assert_eq!(c.percentage_of_nodes_to_score, 30);
        assert_eq!(c.pod_initial_backoff, Duration::from_secs(2));
        assert!(!c.leader_election.leader_elect);
        assert_eq!(c.leader_election.lease_duration, Duration::from_secs(5));
        assert_eq!(c.profiles.len(), 2);
        assert_eq!(c.profiles[1].plugin_config[0].0, "NodeResourcesFit");
    }

    #[test]
    fn wrong_kinds_and_duplicate_profiles_are_rejected() {
        assert!(Config::parse("kind: Pod\napiVersion: v1\n").is_err());
        let dup = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles: [{schedulerName: a}, {schedulerName: a}]\n";
        assert!(Config::parse(dup).unwrap_err().contains("Duplicate"));
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), None);
    }
}
