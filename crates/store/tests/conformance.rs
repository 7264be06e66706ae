//! One conformance suite for every backend: the functions in `cases` take an
//! `Arc<dyn Backend>` and assert the contract of `ferrokube_store::Backend`; the `conformance!`
//! macro runs each of them against memory, sqlite (in a temporary directory) and a real etcd
//! started by the test. Then sqlite-only tests: restart, crash (kill -9) and TTL across restart.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokube_store::etcd::EtcdBackend;
use ferrokube_store::memory::MemoryBackend;
use ferrokube_store::sqlite::SqliteBackend;
use ferrokube_store::{Backend, Error, Event, EventType, WatchStream};
use futures::StreamExt;

fn v(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A backend and whatever must live as long as it (temporary directory, etcd process).
struct Fixture {
    backend: Arc<dyn Backend>,
    _keep: Vec<Box<dyn std::any::Any + Send>>,
}

async fn memory_fixture() -> Fixture {
    Fixture {
        backend: Arc::new(MemoryBackend::new()),
        _keep: Vec::new(),
    }
}

async fn sqlite_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend =
        SqliteBackend::open(&dir.path().join("db").join("state.db")).expect("open sqlite");
    Fixture {
        backend: Arc::new(backend),
        _keep: vec![Box::new(dir)],
    }
}

use ferrokube_store::testing::EtcdProcess;

async fn etcd_fixture() -> Fixture {
    let mut etcd = EtcdProcess::start();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = etcd.exited() {
            panic!("etcd exited with {status}:\n{}", etcd.log());
        }
        if let Ok(backend) = EtcdBackend::connect(std::slice::from_ref(&etcd.endpoint)).await
            && backend.current_revision().await.is_ok()
        {
            return Fixture {
                backend: Arc::new(backend),
                _keep: vec![Box::new(etcd)],
            };
        }
        assert!(
            Instant::now() < deadline,
            "etcd did not answer within 30s:\n{}",
            etcd.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Collects `n` events from `stream` (skipping progress notifications), failing after `wait`.
async fn next_events(stream: &mut WatchStream, n: usize, wait: Duration) -> Vec<Event> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while events.len() < n {
        let batch = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("timed out with {} of {n} events: {events:?}", events.len()))
            .expect("watch stream ended")
            .expect("watch failed");
        if let Some(last) = batch.events.last() {
            assert!(
                batch.revision >= last.revision(),
                "a batch brings the watcher past its events"
            );
        }
        events.extend(batch.events);
    }
    events
}

mod cases {
    use super::*;

    pub async fn create_then_get_returns_the_value_and_revisions(store: Arc<dyn Backend>) {
        let before = store.current_revision().await.unwrap();
        let rev = store
            .create("/registry/pods/default/a", v("a1"), None)
            .await
            .unwrap();
        assert_eq!(rev, before + 1);
        let (at, kv) = store.get("/registry/pods/default/a", 0).await.unwrap();
        assert_eq!(at, rev);
        let kv = kv.expect("created key is there");
        assert_eq!(kv.key, "/registry/pods/default/a");
        assert_eq!(kv.value, v("a1"));
        assert_eq!(kv.create_revision, rev);
        assert_eq!(kv.mod_revision, rev);
    }

    pub async fn create_of_an_existing_key_is_key_exists(store: Arc<dyn Backend>) {
        store.create("/k", v("1"), None).await.unwrap();
        let before = store.current_revision().await.unwrap();
        match store.create("/k", v("2"), None).await {
            Err(Error::KeyExists { key }) => assert_eq!(key, "/k"),
            other => panic!("expected KeyExists, got {other:?}"),
        }
        assert_eq!(
            store.current_revision().await.unwrap(),
            before,
            "a failed write takes no revision"
        );
        assert_eq!(store.get("/k", 0).await.unwrap().1.unwrap().value, v("1"));
    }

    pub async fn get_of_a_missing_key_is_none(store: Arc<dyn Backend>) {
        store.create("/present", v("x"), None).await.unwrap();
        let (at, kv) = store.get("/absent", 0).await.unwrap();
        assert!(kv.is_none());
        assert_eq!(at, store.current_revision().await.unwrap());
    }

    pub async fn update_with_current_revision_succeeds(store: Arc<dyn Backend>) {
        let created = store.create("/k", v("1"), None).await.unwrap();
        let updated = store.update("/k", v("2"), created, None).await.unwrap();
        assert_eq!(updated, created + 1);
        let kv = store.get("/k", 0).await.unwrap().1.unwrap();
        assert_eq!(kv.value, v("2"));
        assert_eq!(kv.create_revision, created);
        assert_eq!(kv.mod_revision, updated);
    }

    pub async fn update_with_stale_revision_is_a_conflict(store: Arc<dyn Backend>) {
        let created = store.create("/k", v("1"), None).await.unwrap();
        let updated = store.update("/k", v("2"), created, None).await.unwrap();
        match store.update("/k", v("3"), created, None).await {
            Err(Error::Conflict {
                key,
                expected,
                current: Some(current),
            }) => {
                assert_eq!(key, "/k");
                assert_eq!(expected, created);
                assert_eq!(current.value, v("2"));
                assert_eq!(current.mod_revision, updated);
                assert_eq!(current.create_revision, created);
            }
            other => panic!("expected Conflict with current, got {other:?}"),
        }
        assert_eq!(store.get("/k", 0).await.unwrap().1.unwrap().value, v("2"));
    }

    pub async fn update_of_a_missing_key_is_a_conflict_without_current(store: Arc<dyn Backend>) {
        let rev = store.create("/k", v("1"), None).await.unwrap();
        store.delete("/k", 0).await.unwrap();
        match store.update("/k", v("2"), rev, None).await {
            Err(Error::Conflict { current: None, .. }) => {}
            other => panic!("expected Conflict without current, got {other:?}"),
        }
        match store.update("/never", v("2"), 0, None).await {
            Err(Error::Conflict { current: None, .. }) => {}
            other => panic!("an update never creates: expected Conflict, got {other:?}"),
        }
        assert!(store.get("/never", 0).await.unwrap().1.is_none());
    }

    pub async fn delete_returns_the_last_value_and_honours_the_expected_revision(
        store: Arc<dyn Backend>,
    ) {
        let created = store.create("/k", v("1"), None).await.unwrap();
        let updated = store.update("/k", v("2"), created, None).await.unwrap();
        match store.delete("/k", created).await {
            Err(Error::Conflict {
                current: Some(current),
                ..
            }) => assert_eq!(current.mod_revision, updated),
            other => panic!("expected Conflict, got {other:?}"),
        }
        let (rev, kv) = store.delete("/k", updated).await.unwrap();
        assert_eq!(rev, updated + 1);
        assert_eq!(kv.value, v("2"));
        assert_eq!(kv.mod_revision, updated);
        assert_eq!(kv.create_revision, created);
        assert!(store.get("/k", 0).await.unwrap().1.is_none());

        store.create("/j", v("1"), None).await.unwrap();
        let (rev, kv) = store.delete("/j", 0).await.unwrap();
        assert_eq!(kv.value, v("1"));
        assert_eq!(store.current_revision().await.unwrap(), rev);
    }

    pub async fn delete_of_a_missing_key_is_not_found(store: Arc<dyn Backend>) {
        store.create("/other", v("1"), None).await.unwrap();
        for expected in [0, 1, 5] {
            match store.delete("/absent", expected).await {
                Err(Error::NotFound { key }) => assert_eq!(key, "/absent"),
                other => panic!("expected NotFound, got {other:?}"),
            }
        }
    }

    pub async fn list_returns_keys_in_order_within_the_prefix_only(store: Arc<dyn Backend>) {
        for key in [
            "/registry/pods2/default/x",
            "/registry/pods/ns/c",
            "/registry/pods/default/b",
            "/registry/pods/default/a",
            "/registry/pod",
            "/registry/services/default/a",
        ] {
            store.create(key, v(key), None).await.unwrap();
        }
        store.delete("/registry/pods/default/b", 0).await.unwrap();
        let list = store.list("/registry/pods/", "", 0, 0).await.unwrap();
        let keys: Vec<&str> = list.kvs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["/registry/pods/default/a", "/registry/pods/ns/c"]);
        assert!(!list.more);
        assert_eq!(list.revision, store.current_revision().await.unwrap());
        assert_eq!(list.kvs[0].value, v("/registry/pods/default/a"));

        let all = store.list("", "", 0, 0).await.unwrap();
        assert_eq!(all.kvs.len(), 5);
        assert!(all.kvs.windows(2).all(|w| w[0].key < w[1].key));
    }

    pub async fn list_paginates_with_limit_and_start_after(store: Arc<dyn Backend>) {
        for i in 0..10 {
            store
                .create(&format!("/registry/cm/ns/{i:02}"), v("x"), None)
                .await
                .unwrap();
        }
        store
            .create("/registry/cm2/ns/00", v("x"), None)
            .await
            .unwrap();
        let first = store.list("/registry/cm/", "", 4, 0).await.unwrap();
        assert_eq!(first.kvs.len(), 4);
        assert!(first.more);
        // Writes after the first page must not show up in the next pages.
        store
            .create("/registry/cm/ns/05a", v("late"), None)
            .await
            .unwrap();
        store.delete("/registry/cm/ns/07", 0).await.unwrap();

        let mut keys: Vec<String> = first.kvs.iter().map(|kv| kv.key.clone()).collect();
        let mut more = first.more;
        while more {
            let last = keys.last().unwrap().clone();
            let page = store
                .list("/registry/cm/", &last, 4, first.revision)
                .await
                .unwrap();
            assert_eq!(page.revision, first.revision);
            assert!(page.kvs.len() <= 4);
            keys.extend(page.kvs.iter().map(|kv| kv.key.clone()));
            more = page.more;
        }
        let expected: Vec<String> = (0..10).map(|i| format!("/registry/cm/ns/{i:02}")).collect();
        assert_eq!(keys, expected);

        let exact = store
            .list("/registry/cm/", "", 10, first.revision)
            .await
            .unwrap();
        assert_eq!(exact.kvs.len(), 10);
        assert!(
            !exact.more,
            "a limit equal to the number of keys leaves nothing more"
        );
    }

    pub async fn list_and_get_at_an_old_revision_see_the_old_state(store: Arc<dyn Backend>) {
        let a1 = store.create("/p/a", v("a1"), None).await.unwrap();
        let b1 = store.create("/p/b", v("b1"), None).await.unwrap();
        let old = store.current_revision().await.unwrap();
        store.update("/p/a", v("a2"), a1, None).await.unwrap();
        store.delete("/p/b", b1).await.unwrap();
        store.create("/p/c", v("c1"), None).await.unwrap();

        let list = store.list("/p/", "", 0, old).await.unwrap();
        assert_eq!(list.revision, old);
        let got: Vec<(&str, Bytes)> = list
            .kvs
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.clone()))
            .collect();
        assert_eq!(got, [("/p/a", v("a1")), ("/p/b", v("b1"))]);

        let (at, kv) = store.get("/p/a", old).await.unwrap();
        assert_eq!(at, old);
        assert_eq!(kv.unwrap().value, v("a1"));
        assert!(store.get("/p/c", old).await.unwrap().1.is_none());
        assert!(store.get("/p/b", 0).await.unwrap().1.is_none());

        let now = store.list("/p/", "", 0, 0).await.unwrap();
        let got: Vec<&str> = now.kvs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(got, ["/p/a", "/p/c"]);
    }

    pub async fn reads_at_a_future_revision_fail(store: Arc<dyn Backend>) {
        store.create("/k", v("1"), None).await.unwrap();
        let future = store.current_revision().await.unwrap() + 10;
        match store.get("/k", future).await {
            Err(Error::FutureRevision { requested, .. }) => assert_eq!(requested, future),
            other => panic!("expected FutureRevision, got {other:?}"),
        }
        assert!(matches!(
            store.list("/", "", 0, future).await,
            Err(Error::FutureRevision { .. })
        ));
    }

    pub async fn current_revision_increases_by_one_per_write_and_never_on_failures(
        store: Arc<dyn Backend>,
    ) {
        let mut last = store.current_revision().await.unwrap();
        let r = store.create("/k", v("1"), None).await.unwrap();
        assert_eq!(r, last + 1);
        last = r;
        assert!(store.create("/k", v("1"), None).await.is_err());
        assert!(store.update("/k", v("2"), r + 100, None).await.is_err());
        assert!(store.delete("/missing", 0).await.is_err());
        assert_eq!(store.current_revision().await.unwrap(), last);
        let r = store.update("/k", v("2"), r, None).await.unwrap();
        assert_eq!(r, last + 1);
        let (r, _) = store.delete("/k", 0).await.unwrap();
        assert_eq!(r, last + 2);
        assert_eq!(store.current_revision().await.unwrap(), r);
    }

    pub async fn count_counts_live_keys_under_the_prefix(store: Arc<dyn Backend>) {
        for key in ["/registry/pods/a", "/registry/pods/b", "/registry/pods2/a"] {
            store.create(key, v("x"), None).await.unwrap();
        }
        store.delete("/registry/pods/b", 0).await.unwrap();
        let (rev, count) = store.count("/registry/pods/").await.unwrap();
        assert_eq!(count, 1);
        assert_eq!(rev, store.current_revision().await.unwrap());
        assert_eq!(store.count("/registry/").await.unwrap().1, 2);
    }

    pub async fn watch_replays_history_then_streams_live_events_with_prev_values(
        store: Arc<dyn Backend>,
    ) {
        store.create("/w/before", v("x"), None).await.unwrap();
        let start = store.current_revision().await.unwrap();
        let a1 = store.create("/w/a", v("a1"), None).await.unwrap();
        let a2 = store.update("/w/a", v("a2"), a1, None).await.unwrap();
        let (a3, _) = store.delete("/w/a", a2).await.unwrap();
        store.create("/other/z", v("z"), None).await.unwrap();

        let mut watch = store.watch("/w/", start).await.unwrap();
        let events = next_events(&mut watch, 3, Duration::from_secs(10)).await;
        assert_eq!(
            events
                .iter()
                .map(|e| (e.kind, e.revision()))
                .collect::<Vec<_>>(),
            [
                (EventType::Create, a1),
                (EventType::Update, a2),
                (EventType::Delete, a3)
            ]
        );
        assert!(events[0].prev.is_none());
        assert_eq!(events[1].kv.value, v("a2"));
        assert_eq!(events[1].kv.create_revision, a1);
        assert_eq!(events[1].prev.as_ref().unwrap().value, v("a1"));
        assert_eq!(events[1].prev.as_ref().unwrap().mod_revision, a1);
        assert_eq!(events[2].kv.key, "/w/a");
        assert_eq!(
            events[2].kv.value,
            v("a2"),
            "a delete carries the last value"
        );
        assert_eq!(events[2].kv.create_revision, a1);
        assert_eq!(events[2].prev.as_ref().unwrap().value, v("a2"));
        assert_eq!(events[2].prev.as_ref().unwrap().mod_revision, a2);

        // Live.
        let b1 = store.create("/w/b", v("b1"), None).await.unwrap();
        store.create("/w2/not-mine", v("x"), None).await.unwrap();
        let b2 = store.update("/w/b", v("b2"), b1, None).await.unwrap();
        let events = next_events(&mut watch, 2, Duration::from_secs(10)).await;
        assert_eq!(
            events
                .iter()
                .map(|e| (e.kind, e.revision()))
                .collect::<Vec<_>>(),
            [(EventType::Create, b1), (EventType::Update, b2)]
        );
        assert_eq!(events[1].prev.as_ref().unwrap().value, v("b1"));

        // Watching from the middle of history starts right after it.
        let mut watch = store.watch("/w/", a2).await.unwrap();
        let events = next_events(&mut watch, 1, Duration::from_secs(10)).await;
        assert_eq!(events[0].revision(), a3);
    }

    pub async fn watch_catches_up_when_it_falls_far_behind(store: Arc<dyn Backend>) {
        let start = store.current_revision().await.unwrap();
        let mut watch = store.watch("/lag/", start).await.unwrap();
        // More single writes than the live channel of the embedded backends holds, while the
        // watcher does not read.
        let n = 1500;
        for i in 0..n {
            store
                .create(&format!("/lag/{i:05}"), v("x"), None)
                .await
                .unwrap();
        }
        let events = next_events(&mut watch, n, Duration::from_secs(60)).await;
        assert_eq!(events.len(), n, "no duplicates");
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event.revision(), start + 1 + i as i64, "no gap, in order");
            assert_eq!(event.kv.key, format!("/lag/{i:05}"));
        }
    }

    pub async fn watch_from_a_compacted_revision_fails_with_compacted(store: Arc<dyn Backend>) {
        let r1 = store.create("/c/a", v("1"), None).await.unwrap();
        let r2 = store.update("/c/a", v("2"), r1, None).await.unwrap();
        let r3 = store.update("/c/a", v("3"), r2, None).await.unwrap();
        assert_eq!(store.compact(r2).await.unwrap(), r2);
        assert_eq!(store.compacted_revision().await.unwrap(), r2);

        let mut watch = store.watch("/c/", r1 - 1).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("answer in time")
            .expect("an item");
        match first {
            Err(Error::Compacted { compacted, .. }) => assert_eq!(compacted, r2),
            other => panic!("expected Compacted, got {other:?}"),
        }

        // From the compacted revision itself it works.
        let mut watch = store.watch("/c/", r2).await.unwrap();
        let events = next_events(&mut watch, 1, Duration::from_secs(10)).await;
        assert_eq!(events[0].revision(), r3);
        assert_eq!(events[0].prev.as_ref().unwrap().value, v("2"));
    }

    pub async fn compaction_keeps_latest_values_and_rejects_old_reads(store: Arc<dyn Backend>) {
        let a1 = store.create("/k/a", v("a1"), None).await.unwrap();
        let a2 = store.update("/k/a", v("a2"), a1, None).await.unwrap();
        let b1 = store.create("/k/b", v("b1"), None).await.unwrap();
        store.create("/k/gone", v("g"), None).await.unwrap();
        store.delete("/k/gone", 0).await.unwrap();
        let c1 = store.create("/k/c", v("c1"), None).await.unwrap();
        let mid = store.current_revision().await.unwrap();
        let c2 = store.update("/k/c", v("c2"), c1, None).await.unwrap();

        assert_eq!(store.compact(mid).await.unwrap(), mid);
        // Idempotent, and compacting to an older revision is a no-op.
        assert_eq!(store.compact(mid).await.unwrap(), mid);
        assert_eq!(store.compact(a1).await.unwrap(), mid);
        assert_eq!(store.compacted_revision().await.unwrap(), mid);

        match store.get("/k/a", a1).await {
            Err(Error::Compacted {
                requested,
                compacted,
            }) => {
                assert_eq!(requested, a1);
                assert_eq!(compacted, mid);
            }
            other => panic!("expected Compacted, got {other:?}"),
        }
        assert!(matches!(
            store.list("/k/", "", 0, a2).await,
            Err(Error::Compacted { .. })
        ));

        let at_mid = store.list("/k/", "", 0, mid).await.unwrap();
        let got: Vec<(&str, Bytes)> = at_mid
            .kvs
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.clone()))
            .collect();
        assert_eq!(
            got,
            [("/k/a", v("a2")), ("/k/b", v("b1")), ("/k/c", v("c1"))]
        );
        let now = store.list("/k/", "", 0, 0).await.unwrap();
        let got: Vec<(&str, Bytes, i64)> = now
            .kvs
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.clone(), kv.mod_revision))
            .collect();
        assert_eq!(
            got,
            [
                ("/k/a", v("a2"), a2),
                ("/k/b", v("b1"), b1),
                ("/k/c", v("c2"), c2)
            ]
        );
        // Writes continue normally.
        store.update("/k/a", v("a3"), a2, None).await.unwrap();
        assert!(matches!(
            store
                .compact(store.current_revision().await.unwrap() + 5)
                .await,
            Err(Error::FutureRevision { .. })
        ));
    }

    pub async fn ttl_expiry_produces_a_delete_event(store: Arc<dyn Backend>) {
        let start = store.current_revision().await.unwrap();
        let mut watch = store.watch("/ttl/", start).await.unwrap();
        let created = store
            .create("/ttl/event", v("e"), Some(Duration::from_secs(1)))
            .await
            .unwrap();
        store.create("/ttl/forever", v("f"), None).await.unwrap();
        assert!(store.get("/ttl/event", 0).await.unwrap().1.is_some());
        // etcd's shortest lease is a couple of seconds and expiry is checked every ~0.5s.
        let events = next_events(&mut watch, 3, Duration::from_secs(20)).await;
        assert_eq!(events[0].revision(), created);
        let delete = &events[2];
        assert_eq!(delete.kind, EventType::Delete);
        assert_eq!(delete.kv.key, "/ttl/event");
        assert_eq!(delete.prev.as_ref().unwrap().value, v("e"));
        assert!(store.get("/ttl/event", 0).await.unwrap().1.is_none());
        assert!(store.get("/ttl/forever", 0).await.unwrap().1.is_some());
    }

    pub async fn update_without_ttl_removes_the_expiry(store: Arc<dyn Backend>) {
        let created = store
            .create("/ttl/k", v("1"), Some(Duration::from_secs(1)))
            .await
            .unwrap();
        store.update("/ttl/k", v("2"), created, None).await.unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(
            store.get("/ttl/k", 0).await.unwrap().1.unwrap().value,
            v("2")
        );
    }

    pub async fn concurrent_creates_get_distinct_revisions_and_are_all_visible(
        store: Arc<dyn Backend>,
    ) {
        let start = store.current_revision().await.unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut revs = Vec::new();
                    for i in 0..16 {
                        let key = format!("/registry/configmaps/ns{t}/cm{i}");
                        revs.push(store.create(&key, v(&key), None).await.unwrap());
                    }
                    revs
                })
            })
            .collect();
        let mut revs = Vec::new();
        for task in tasks {
            revs.extend(task.await.unwrap());
        }
        revs.sort_unstable();
        let expected: Vec<i64> = (start + 1..=start + 1024).collect();
        assert_eq!(revs, expected, "distinct, consecutive revisions");
        let list = store.list("/registry/configmaps/", "", 0, 0).await.unwrap();
        assert_eq!(list.kvs.len(), 1024);
        assert_eq!(store.count("/registry/configmaps/").await.unwrap().1, 1024);
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::memory_fixture().await;
                    super::cases::$case(fixture.backend.clone()).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::sqlite_fixture().await;
                    super::cases::$case(fixture.backend.clone()).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::etcd_fixture().await;
                    super::cases::$case(fixture.backend.clone()).await;
                }
            )*
        }
    };
}

conformance!(
    create_then_get_returns_the_value_and_revisions,
    create_of_an_existing_key_is_key_exists,
    get_of_a_missing_key_is_none,
    update_with_current_revision_succeeds,
    update_with_stale_revision_is_a_conflict,
    update_of_a_missing_key_is_a_conflict_without_current,
    delete_returns_the_last_value_and_honours_the_expected_revision,
    delete_of_a_missing_key_is_not_found,
    list_returns_keys_in_order_within_the_prefix_only,
    list_paginates_with_limit_and_start_after,
    list_and_get_at_an_old_revision_see_the_old_state,
    reads_at_a_future_revision_fail,
    current_revision_increases_by_one_per_write_and_never_on_failures,
    count_counts_live_keys_under_the_prefix,
    watch_replays_history_then_streams_live_events_with_prev_values,
    watch_catches_up_when_it_falls_far_behind,
    watch_from_a_compacted_revision_fails_with_compacted,
    compaction_keeps_latest_values_and_rejects_old_reads,
    ttl_expiry_produces_a_delete_event,
    update_without_ttl_removes_the_expiry,
    concurrent_creates_get_distinct_revisions_and_are_all_visible,
);

mod sqlite_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reopen_keeps_every_acknowledged_write_and_revisions_keep_increasing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let (last, compacted) = {
            let store = SqliteBackend::open(&path).unwrap();
            let a = store.create("/a", v("a1"), None).await.unwrap();
            store.update("/a", v("a2"), a, None).await.unwrap();
            store.create("/b", v("b"), None).await.unwrap();
            let compacted = store.current_revision().await.unwrap();
            store.compact(compacted).await.unwrap();
            // The newest write is a delete, and the newest rows are compacted away.
            let (last, _) = store.delete("/b", 0).await.unwrap();
            (last, compacted)
        };
        let store = SqliteBackend::open(&path).unwrap();
        assert_eq!(store.current_revision().await.unwrap(), last);
        assert_eq!(store.compacted_revision().await.unwrap(), compacted);
        assert_eq!(store.get("/a", 0).await.unwrap().1.unwrap().value, v("a2"));
        assert!(store.get("/b", 0).await.unwrap().1.is_none());
        assert_eq!(store.create("/c", v("c"), None).await.unwrap(), last + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ttl_expiry_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let store = SqliteBackend::open(&path).unwrap();
            store
                .create("/ttl", v("x"), Some(Duration::from_secs(1)))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let store = SqliteBackend::open(&path).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.get("/ttl", 0).await.unwrap().1.is_some() {
            assert!(
                Instant::now() < deadline,
                "expired key not deleted after a restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compaction_deletes_history_in_chunks_while_writes_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Arc::new(SqliteBackend::open(&path).unwrap());
        let mut revs = Vec::new();
        for k in 0..5 {
            revs.push(
                store
                    .create(&format!("/h/{k}"), v("0"), None)
                    .await
                    .unwrap(),
            );
        }
        // 5 keys x 600 updates: several compaction chunks of history.
        for i in 1..=600 {
            for (k, rev) in revs.iter_mut().enumerate() {
                *rev = store
                    .update(&format!("/h/{k}"), v(&i.to_string()), *rev, None)
                    .await
                    .unwrap();
            }
        }
        store.create("/h/deleted", v("x"), None).await.unwrap();
        store.delete("/h/deleted", 0).await.unwrap();
        let target = store.current_revision().await.unwrap();
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut rev = store.create("/other", v("0"), None).await.unwrap();
                for i in 0..200 {
                    rev = store
                        .update("/other", v(&i.to_string()), rev, None)
                        .await
                        .unwrap();
                }
            })
        };
        assert_eq!(store.compact(target).await.unwrap(), target);
        writer.await.unwrap();

        let rows_at_or_below: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM log WHERE rev <= ?1", [target], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            rows_at_or_below, 5,
            "only the latest value of each live key is left"
        );
        let list = store.list("/h/", "", 0, target).await.unwrap();
        assert_eq!(list.kvs.len(), 5);
        assert!(list.kvs.iter().all(|kv| kv.value == v("600")));
        assert_eq!(
            store.get("/other", 0).await.unwrap().1.unwrap().value,
            v("199")
        );
    }

    const CRASH_DB: &str = "FERROKUBE_STORE_CRASH_DB";

    /// Not a test: the child process of `kill_9_never_loses_an_acknowledged_write`. Writes in a
    /// loop from several tasks and prints every acknowledged create until it is killed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "child process of kill_9_never_loses_an_acknowledged_write"]
    async fn crash_child_writer() {
        let Ok(path) = std::env::var(CRASH_DB) else {
            return;
        };
        let store = Arc::new(SqliteBackend::open(Path::new(&path)).unwrap());
        let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let tasks: Vec<_> = (0..32)
            .map(|t| {
                let store = store.clone();
                let stdout = stdout.clone();
                tokio::spawn(async move {
                    // Bounded even if nobody kills us.
                    for i in 0..20_000 {
                        let key = format!("/crash/{t}/{i}");
                        let rev = store.create(&key, v(&key), None).await.unwrap();
                        let mut out = stdout.lock().unwrap();
                        writeln!(out, "ACK {key} {rev}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_9_never_loses_an_acknowledged_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "sqlite_only::crash_child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DB, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("ACK ") {
                    let (key, rev) = rest.rsplit_once(' ').unwrap();
                    if tx
                        .send((key.to_string(), rev.parse::<i64>().unwrap()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        });
        let mut acked = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.len() < 3000 && Instant::now() < deadline {
            if let Ok(ack) = rx.recv_timeout(Duration::from_millis(100)) {
                acked.push(ack);
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        // Lines printed before the kill were acknowledged too.
        acked.extend(rx.try_iter());
        assert!(
            acked.len() >= 100,
            "the child wrote too little: {}",
            acked.len()
        );

        let store = SqliteBackend::open(&path).unwrap();
        let max = acked.iter().map(|(_, rev)| *rev).max().unwrap();
        let current = store.current_revision().await.unwrap();
        assert!(current >= max, "revision went backwards: {current} < {max}");
        for (key, rev) in &acked {
            let kv = store
                .get(key, 0)
                .await
                .unwrap()
                .1
                .unwrap_or_else(|| panic!("acknowledged {key} at {rev} lost"));
            assert_eq!(kv.mod_revision, *rev);
            assert_eq!(kv.value, v(key));
        }
        let next = store.create("/after-crash", v("x"), None).await.unwrap();
        assert_eq!(next, current + 1);
    }
}
