//! Recording core/v1 Events as client-go's EventRecorder does: identical events within the
//! cache window are one Event whose `count` and `lastTimestamp` grow (what `kubectl describe`
//! shows as `x2 over 71s`), and more than ten events that differ only in message within ten
//! minutes are combined into one "(combined from similar events)" Event. Writes happen in the
//! background: recording never blocks the caller.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Upstream's aggregation: more than this many similar events in the window are combined.
const AGGREGATE_MAX: usize = 10;
const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);
const CACHE_SIZE: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

struct Pending {
    reference: ObjectReference,
    type_: EventType,
    reason: String,
    message: String,
}

#[derive(Clone)]
struct Logged {
    name: String,
    count: i32,
}

struct Similar {
    messages: Vec<String>,
    since: Instant,
}

/// Records events for one component (`deployment-controller`, `default-scheduler`, `kubelet`).
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::UnboundedSender<Pending>,
}

impl EventRecorder {
    pub fn new(client: kube::Client, component: &str, host: &str) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let w = Writer {
            client,
            source: EventSource {
                component: Some(component.to_string()),
                host: (!host.is_empty()).then(|| host.to_string()),
            },
            logged: Mutex::new(HashMap::new()),
            similar: Mutex::new(HashMap::new()),
        };
        tokio::spawn(Arc::new(w).run(rx));
        EventRecorder { tx }
    }

    /// Records an event about `obj`.
    pub fn record<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        self.record_ref(object_reference(obj), type_, reason, message);
    }

    pub fn record_ref(
        &self,
        reference: ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        let _ = self.tx.send(Pending {
            reference,
            type_,
            reason: reason.into(),
            message: message.into(),
        });
    }
}

/// The reference an Event's `involvedObject` carries.
pub fn object_reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        name: Some(obj.name_any()),
        namespace: obj.namespace(),
        uid: obj.uid(),
        resource_version: obj.resource_version(),
        ..Default::default()
    }
}

struct Writer {
    client: kube::Client,
    source: EventSource,
    logged: Mutex<HashMap<String, Logged>>,
    similar: Mutex<HashMap<String, Similar>>,
}

impl Writer {
    async fn run(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Pending>) {
        while let Some(p) = rx.recv().await {
            if let Err(e) = self.write(p).await {
                tracing::debug!(error = %e, "could not write event");
            }
        }
    }

    /// client-go's EventAggregator: events alike but for the message are combined after ten.
    fn aggregate(&self, p: &mut Pending) {
        let r = &p.reference;
        let key = format!(
            "{}/{}/{}/{}/{}/{}",
            self.source.component.as_deref().unwrap_or(""),
            r.namespace.as_deref().unwrap_or(""),
            r.name.as_deref().unwrap_or(""),
            r.uid.as_deref().unwrap_or(""),
            p.type_.as_str(),
            p.reason
        );
        let mut similar = self.similar.lock();
        if similar.len() > CACHE_SIZE {
            similar.clear();
        }
        let s = similar.entry(key).or_insert_with(|| Similar {
            messages: Vec::new(),
            since: Instant::now(),
        });
        if s.since.elapsed() > AGGREGATE_WINDOW {
            s.messages.clear();
            s.since = Instant::now();
        }
        if !s.messages.contains(&p.message) {
            s.messages.push(p.message.clone());
        }
        if s.messages.len() > AGGREGATE_MAX {
            p.message = format!("(combined from similar events): {}", p.message);
        }
    }

    async fn write(&self, mut p: Pending) -> Result<(), kube::Error> {
        self.aggregate(&mut p);
        let ns = p
            .reference
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let key = format!(
            "{}/{}/{}/{}/{}/{}/{}",
            ns,
            p.reference.kind.as_deref().unwrap_or(""),
            p.reference.name.as_deref().unwrap_or(""),
            p.reference.uid.as_deref().unwrap_or(""),
            p.type_.as_str(),
            p.reason,
            p.message
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let now = Time(jiff::Timestamp::now());
        let seen = self.logged.lock().get(&key).cloned();
        if let Some(prev) = seen {
            let count = prev.count + 1;
            let patch = serde_json::json!({"count": count, "lastTimestamp": now});
            match api
                .patch(&prev.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.logged.lock().insert(key, Logged { count, ..prev });
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let name = format!(
            "{}.{:x}",
            p.reference.name.as_deref().unwrap_or("unknown"),
            nanos
        );
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: p.reference,
            reason: Some(p.reason),
            message: Some(p.message),
            type_: Some(p.type_.as_str().to_string()),
            source: Some(self.source.clone()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now.clone()),
            count: Some(1),
            reporting_component: self.source.component.clone(),
            reporting_instance: self.source.host.clone(),
            ..Default::default()
        };
        api.create(&PostParams::default(), &ev).await?;
        let mut logged = self.logged.lock();
        if logged.len() > CACHE_SIZE {
            logged.clear();
        }
        logged.insert(key, Logged { name, count: 1 });
        Ok(())
    }
}
