//! Watches that start before the watch cache's history: replayed from the store's own history
//! (which reaches back to the last compaction), then followed live from the store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrokube_api::ApiError;
use ferrokube_api::resources::ResourceInfo;
use ferrokube_store::Backend;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::cache::{Filter, storage_resources, to_cache_event};
use crate::handlers::{error_line, watch_line};
use crate::response::{IncludeObject, Output};

#[allow(clippy::too_many_arguments)]
pub async fn run(
    store: Arc<dyn Backend>,
    info: &'static ResourceInfo,
    prefix: String,
    after: i64,
    filter: Filter,
    tx: mpsc::Sender<Bytes>,
    timeout: Duration,
    out: Output,
    include: IncludeObject,
) {
    let storage = storage_resources()
        .find(|r| r.storage_prefix == info.storage_prefix)
        .unwrap_or(info);
    let mut stream = match store.watch(&prefix, after).await {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(error_line(&expired(after, e))).await;
            return;
        }
    };
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut first = true;
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            next = stream.next() => match next {
                Some(Ok(batch)) => {
                    for ev in &batch.events {
                        let Some(ce) = to_cache_event(storage, ev) else { continue };
                        if let Some(kind) = filter.translate(&ce)
                            && tx.send(watch_line(info, kind, &ce.obj, out, include, &mut first)).await.is_err() {
                                return;
                            }
                    }
                }
                Some(Err(e)) => {
                    let _ = tx.send(error_line(&expired(after, e))).await;
                    return;
                }
                None => return,
            },
        }
    }
}

fn expired(after: i64, e: ferrokube_store::Error) -> ApiError {
    match e {
        ferrokube_store::Error::Compacted { compacted, .. } => {
            ApiError::expired(format!("too old resource version: {after} ({compacted})"))
        }
        other => ApiError::internal(other),
    }
}
