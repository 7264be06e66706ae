//! Two schedulers with leader election on the Lease kube-system/kube-scheduler: only the
//! leader binds; when it goes away the other takes over within the lease duration, and no
//! pod is bound twice.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::json;
use support::*;
use tokio_util::sync::CancellationToken;

fn elected(lease: Duration) -> ferrokube_scheduler::Config {
    let mut c = ferrokube_scheduler::Config::default();
    c.leader_election.lease_duration = lease;
    c.leader_election.renew_deadline = lease * 2 / 3;
    c.leader_election.retry_period = Duration::from_millis(300);
    c
}

async fn holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    leases
        .get_opt("kube-scheduler")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec.and_then(|s| s.holder_identity))
}

#[tokio::test]
async fn a_standby_scheduler_takes_over_and_nothing_is_bound_twice() {
    let (client, server_cancel) = api_server().await;
    let c = Cluster {
        client: client.clone(),
        cancel: server_cancel.clone(),
    };
    let ns = kube::api::Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    let _ = ns
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "kube-system"}})).unwrap(),
        )
        .await;
    let lease = Duration::from_secs(3);
    let tokens: HashMap<&str, CancellationToken> = [
        ("sched-a", server_cancel.child_token()),
        ("sched-b", server_cancel.child_token()),
    ]
    .into();
    for (id, t) in &tokens {
        start_scheduler(&client, elected(lease), id, t.clone());
    }
    for i in 0..3 {
        c.node(&format!("n{i}"), "64", json!({}), json!([])).await;
    }
    c.create_pods("before", 20, web(json!({}))).await;
    c.wait_bound("before", 20).await;
    let leader = holder(&client).await.expect("a leader holds the lease");
    let standby = if leader == "sched-a" {
        "sched-b"
    } else {
        "sched-a"
    };

    tokens[leader.as_str()].cancel();
    let killed = tokio::time::Instant::now();
    c.create_pods("after", 20, web(json!({}))).await;
    c.wait_bound("after", 20).await;
    assert!(
        killed.elapsed() < lease + Duration::from_secs(3),
        "takeover took {:?}",
        killed.elapsed()
    );
    assert_eq!(holder(&client).await.as_deref(), Some(standby));

    // Every pod was bound once: one Scheduled event each, nothing more.
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let evs = events.list(&ListParams::default()).await.unwrap().items;
    let mut scheduled: HashMap<String, usize> = HashMap::new();
    for e in evs
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Scheduled"))
    {
        *scheduled
            .entry(e.involved_object.name.clone().unwrap_or_default())
            .or_default() += e.count.unwrap_or(1) as usize;
    }
    assert_eq!(scheduled.len(), 40, "{scheduled:?}");
    assert!(scheduled.values().all(|&n| n == 1), "{scheduled:?}");
    assert!(
        !evs.iter()
            .any(|e| e.reason.as_deref() == Some("FailedScheduling")),
        "no binding conflicts"
    );
}
