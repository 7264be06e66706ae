//! Throughput of the sqlite backend under concurrent creates, as the API server drives it.
//! Run by hand: `cargo test -p ferrokube-store --release --test sqlite_bench -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokube_store::Backend;
use ferrokube_store::sqlite::SqliteBackend;

const TASKS: usize = 64;
const PER_TASK: usize = 400;
const VALUE_SIZE: usize = 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark, run by hand"]
async fn sqlite_creates_per_second_with_64_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Backend> =
        Arc::new(SqliteBackend::open(&dir.path().join("bench.db")).unwrap());
    let value = Bytes::from(vec![b'x'; VALUE_SIZE]);
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            let value = value.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(PER_TASK);
                for i in 0..PER_TASK {
                    let key = format!("/registry/configmaps/ns{t}/cm{i:06}");
                    let begin = Instant::now();
                    store.create(&key, value.clone(), None).await.unwrap();
                    latencies.push(begin.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let total = latencies.len();
    println!(
        "sqlite: {total} creates of {VALUE_SIZE} B from {TASKS} tasks in {:.2?}: {:.0} creates/s, \
         p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        elapsed,
        total as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        latencies[total - 1],
    );
    assert_eq!(
        store.count("/registry/configmaps/").await.unwrap().1,
        total as i64
    );
}
