//! The watch machinery shared by the embedded backends (memory and sqlite).
//!
//! A backend publishes every committed write on a broadcast channel ([`Commit`]) and can read
//! its history back ([`History`]). A watch subscribes to the channel first and reads history
//! second, so every commit is either in the history it read or still to come on the channel:
//! no gap; commits at or below what it has already delivered are skipped: no duplicate. A
//! watcher that falls behind the channel (broadcast overflow) reads the missed part from history
//! again instead of failing.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::{Event, Result, Revision, WatchBatch, WatchStream};

/// How many commits a slow watcher may fall behind before it has to catch up from history.
pub(crate) const CHANNEL_CAPACITY: usize = 1024;

/// How many events one history read returns at most (one batch of the stream).
pub(crate) const HISTORY_PAGE: usize = 1000;

/// How often a quiet watcher is told the store moved on (a progress notification), if it did.
pub(crate) const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// One committed write transaction, as published to watchers: `revision` is the store revision
/// after it and `events` are its changes in revision order (possibly empty).
#[derive(Debug)]
pub(crate) struct Commit {
    pub revision: Revision,
    pub events: Vec<Event>,
}

/// One page of history.
#[derive(Debug)]
pub(crate) struct HistoryPage {
    /// Events under the prefix with a revision greater than the `after` asked for, in order.
    pub events: Vec<Event>,
    /// The history up to this revision has been read (every event under the prefix up to it is
    /// in `events` or was before `after`).
    pub upto: Revision,
    /// Whether `upto` is the store's revision at the time of the read (nothing more to read).
    pub complete: bool,
}

/// Read access to a backend's stored history.
#[async_trait::async_trait]
pub(crate) trait History: Send + Sync + 'static {
    /// Events under `prefix` after `after`, at most `limit`. `Compacted` if history after
    /// `after` is no longer complete.
    async fn history(&self, prefix: &str, after: Revision, limit: usize) -> Result<HistoryPage>;
}

enum Phase {
    /// Reading stored history; the live channel buffers meanwhile.
    CatchUp,
    /// Following the live channel.
    Live,
    /// The stream has ended.
    Done,
}

struct State<H: History> {
    source: Arc<H>,
    live: broadcast::Receiver<Arc<Commit>>,
    prefix: String,
    phase: Phase,
    /// Everything up to this revision has been delivered (or did not concern the prefix).
    delivered: Revision,
    /// The revision of the last batch handed to the caller.
    sent: Revision,
    next_progress: tokio::time::Instant,
    cancel: CancellationToken,
}

/// Builds the watch stream. `live` must have been subscribed before this call, so that nothing
/// committed after the history read can be missed.
pub(crate) fn stream<H: History>(
    source: Arc<H>,
    live: broadcast::Receiver<Arc<Commit>>,
    prefix: &str,
    after: Revision,
    cancel: CancellationToken,
) -> WatchStream {
    let state = State {
        source,
        live,
        prefix: prefix.to_string(),
        phase: Phase::CatchUp,
        delivered: after,
        sent: after,
        next_progress: tokio::time::Instant::now() + PROGRESS_INTERVAL,
        cancel,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = next(&mut state).await?;
        if let Ok(batch) = &item {
            state.sent = batch.revision;
        }
        Some((item, state))
    })
    .boxed()
}

async fn next<H: History>(state: &mut State<H>) -> Option<Result<WatchBatch>> {
    loop {
        match state.phase {
            Phase::Done => return None,
            Phase::CatchUp => {
                let page = tokio::select! {
                    _ = state.cancel.cancelled() => {
                        state.phase = Phase::Done;
                        return None;
                    }
                    page = state.source.history(&state.prefix, state.delivered, HISTORY_PAGE) => page,
                };
                let page = match page {
                    Ok(page) => page,
                    Err(err) => {
                        state.phase = Phase::Done;
                        return Some(Err(err));
                    }
                };
                if page.complete {
                    state.phase = Phase::Live;
                }
                let upto = page.upto.max(state.delivered);
                state.delivered = upto;
                if !page.events.is_empty() {
                    return Some(Ok(WatchBatch {
                        revision: upto,
                        events: page.events,
                    }));
                }
            }
            Phase::Live => {
                let received = tokio::select! {
                    _ = state.cancel.cancelled() => {
                        state.phase = Phase::Done;
                        return None;
                    }
                    _ = tokio::time::sleep_until(state.next_progress) => {
                        state.next_progress = tokio::time::Instant::now() + PROGRESS_INTERVAL;
                        if state.delivered > state.sent {
                            return Some(Ok(WatchBatch { revision: state.delivered, events: Vec::new() }));
                        }
                        continue;
                    }
                    received = state.live.recv() => received,
                };
                match received {
                    Ok(commit) => {
                        if commit.revision <= state.delivered {
                            continue;
                        }
                        let events: Vec<Event> = commit
                            .events
                            .iter()
                            .filter(|e| {
                                e.revision() > state.delivered
                                    && e.kv.key.starts_with(state.prefix.as_str())
                            })
                            .cloned()
                            .collect();
                        state.delivered = commit.revision;
                        if !events.is_empty() {
                            state.next_progress = tokio::time::Instant::now() + PROGRESS_INTERVAL;
                            return Some(Ok(WatchBatch {
                                revision: commit.revision,
                                events,
                            }));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(
                            prefix = %state.prefix,
                            missed,
                            after = state.delivered,
                            "watcher fell behind, catching up from history"
                        );
                        state.phase = Phase::CatchUp;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        state.phase = Phase::Done;
                        return None;
                    }
                }
            }
        }
    }
}
