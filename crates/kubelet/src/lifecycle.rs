//! postStart and preStop hooks: exec, httpGet and sleep handlers (tcpSocket hooks are accepted
//! and do nothing, as upstream).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};

use crate::cri::Runtime;
use crate::probes::{self, Outcome};

/// Runs a hook, giving up after `timeout`.
pub async fn run_hook(
    hook: &LifecycleHandler,
    runtime: &dyn Runtime,
    container_id: &str,
    container: &Container,
    pod_ip: &str,
    timeout: Duration,
) -> Outcome {
    if let Some(e) = &hook.exec {
        let cmd = e.command.clone().unwrap_or_default();
        return probes::exec(runtime, container_id, &cmd, timeout).await;
    }
    if let Some(h) = &hook.http_get {
        return probes::http_get(h, pod_ip, container, timeout).await;
    }
    if let Some(s) = &hook.sleep {
        let d = Duration::from_secs(s.seconds.max(0) as u64).min(timeout);
        tokio::time::sleep(d).await;
        return Outcome::Success(String::new());
    }
    Outcome::Success(String::new())
}

/// The event message of a failed hook, as upstream words it.
pub fn hook_failure_message(
    kind: &str,
    hook: &LifecycleHandler,
    c: &Container,
    pod: &Pod,
    msg: &str,
) -> String {
    let desc = crate::runtime_config::pod_desc(pod);
    if let Some(e) = &hook.exec {
        let cmd = e.command.clone().unwrap_or_default();
        format!(
            "Exec lifecycle hook ({cmd:?}) for Container {:?} in Pod {desc:?} failed - error: {msg}",
            c.name
        )
    } else if hook.http_get.is_some() {
        format!(
            "HTTP lifecycle hook ({}) for Container {:?} in Pod {desc:?} failed - error: {msg}",
            hook.http_get
                .as_ref()
                .and_then(|h| h.path.clone())
                .unwrap_or_default(),
            c.name
        )
    } else {
        format!(
            "{kind} hook for Container {:?} in Pod {desc:?} failed - error: {msg}",
            c.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::SleepAction;

    #[tokio::test(start_paused = true)]
    async fn sleep_hooks_wait_no_longer_than_the_grace_period() {
        let rt = crate::cri::fake::FakeRuntime::new();
        let hook = LifecycleHandler {
            sleep: Some(SleepAction { seconds: 30 }),
            ..Default::default()
        };
        let started = tokio::time::Instant::now();
        let out = run_hook(
            &hook,
            &rt,
            "x",
            &Container::default(),
            "",
            Duration::from_secs(5),
        )
        .await;
        assert!(out.ok());
        assert_eq!(started.elapsed().as_secs(), 5);
    }
}
