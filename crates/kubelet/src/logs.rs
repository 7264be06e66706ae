//! Container logs in the CRI format the runtime writes (`<RFC3339Nano> <stdout|stderr> <P|F>
//! <text>`, P marking a partial line continued by the next), read back for `kubectl logs` with
//! upstream's options: follow, tail, since, limitBytes, timestamps.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

/// What `GET /containerLogs/...` asks for.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
    /// Only lines at or after this time (nanoseconds since the epoch).
    pub since: Option<i64>,
    pub timestamps: bool,
}

/// One parsed log record.
#[derive(Clone, Debug, PartialEq)]
struct Record {
    timestamp: String,
    nanos: i64,
    partial: bool,
    text: Vec<u8>,
}

fn parse_line(line: &[u8]) -> Option<Record> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let _stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or(b"").to_vec();
    let nanos = ts
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_nanosecond() as i64)
        .unwrap_or(0);
    Some(Record {
        timestamp: ts.to_string(),
        nanos,
        partial: tag == b"P",
        text,
    })
}

/// Renders records as `kubectl logs` shows them.
fn render(records: &[Record], timestamps: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at_line_start = true;
    for r in records {
        if timestamps && at_line_start {
            out.extend_from_slice(r.timestamp.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&r.text);
        if !r.partial {
            out.push(b'\n');
        }
        at_line_start = !r.partial;
    }
    out
}

/// Parses whole lines from `buf`, returning the records and how many bytes were consumed.
fn parse_buffer(buf: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut consumed = 0;
    while let Some(nl) = buf[consumed..].iter().position(|b| *b == b'\n') {
        if let Some(r) = parse_line(&buf[consumed..consumed + nl]) {
            records.push(r);
        }
        consumed += nl + 1;
    }
    (records, consumed)
}

/// Keeps the last `n` complete lines (a partial record belongs to the line it ends).
fn tail(records: Vec<Record>, n: i64) -> Vec<Record> {
    if n < 0 {
        return records;
    }
    let mut lines = 0;
    let mut start = records.len();
    for (i, r) in records.iter().enumerate().rev() {
        if !r.partial {
            if lines == n {
                break;
            }
            lines += 1;
        }
        start = i;
    }
    records[start..].to_vec()
}

/// The last lines of a log as plain text (termination messages of `FallbackToLogsOnError`).
pub fn tail_text(path: &Path, lines: i64, max_bytes: usize) -> String {
    let Ok(data) = std::fs::read(path) else {
        return String::new();
    };
    let (records, _) = parse_buffer(&data);
    let text = render(&tail(records, lines), false);
    let start = text.len().saturating_sub(max_bytes);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// Streams a container log to `tx` until it is read (or, when following, until `still_running`
/// says the container has stopped and nothing more arrived, or the receiver goes away).
pub async fn stream<F, Fut>(
    path: PathBuf,
    opts: LogOptions,
    tx: mpsc::Sender<Bytes>,
    still_running: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut budget = opts.limit_bytes.unwrap_or(i64::MAX);
    let mut send = |bytes: Vec<u8>| {
        let mut bytes = bytes;
        if budget <= 0 {
            return None;
        }
        if bytes.len() as i64 > budget {
            bytes.truncate(budget as usize);
        }
        budget -= bytes.len() as i64;
        Some(Bytes::from(bytes))
    };
    let Ok(mut file) = std::fs::File::open(&path) else {
        return;
    };
    let mut data = Vec::new();
    if file.read_to_end(&mut data).is_err() {
        return;
    }
    let (mut records, consumed) = parse_buffer(&data);
    let mut offset = consumed as u64;
    if let Some(since) = opts.since {
        records.retain(|r| r.nanos >= since);
    }
    if let Some(n) = opts.tail_lines {
        records = tail(records, n);
    }
    let first = render(&records, opts.timestamps);
    if !first.is_empty() {
        match send(first) {
            Some(b) => {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            None => return,
        }
    }
    if !opts.follow {
        return;
    }
    let mut pending: Vec<u8> = data[consumed..].to_vec();
    let mut idle_checks = 0u32;
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let mut chunk = Vec::new();
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = file.read_to_end(&mut chunk);
        }
        if chunk.is_empty() {
            idle_checks += 1;
            // Every half second of quiet, see whether the container is still there to write.
            if idle_checks.is_multiple_of(5) && !still_running().await {
                // One last read: the final lines may have landed just before it stopped.
                let mut rest = Vec::new();
                if file.seek(SeekFrom::Start(offset)).is_ok() {
                    let _ = file.read_to_end(&mut rest);
                }
                pending.extend_from_slice(&rest);
                let (records, _) = parse_buffer(&pending);
                if let Some(b) = send(render(&records, opts.timestamps))
                    && !b.is_empty()
                {
                    let _ = tx.send(b).await;
                }
                return;
            }
            continue;
        }
        idle_checks = 0;
        offset += chunk.len() as u64;
        pending.extend_from_slice(&chunk);
        let (records, consumed) = parse_buffer(&pending);
        pending.drain(..consumed);
        let out = render(&records, opts.timestamps);
        if out.is_empty() {
            continue;
        }
        match send(out) {
            Some(b) => {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2024-01-01T00:00:01.000000001Z stdout F one\n\
2024-01-01T00:00:02.000000000Z stderr P tw\n\
2024-01-01T00:00:02.500000000Z stderr F o\n\
2024-01-01T00:00:03.000000000Z stdout F three\n";

    #[test]
    fn partial_lines_join_and_timestamps_prefix_whole_lines() {
        let (records, consumed) = parse_buffer(LOG.as_bytes());
        assert_eq!(consumed, LOG.len());
        assert_eq!(render(&records, false), b"one\ntwo\nthree\n");
        assert_eq!(
            String::from_utf8(render(&records, true)).unwrap(),
            "2024-01-01T00:00:01.000000001Z one\n2024-01-01T00:00:02.000000000Z two\n2024-01-01T00:00:03.000000000Z three\n"
        );
    }

    #[test]
    fn tail_counts_whole_lines() {
        let (records, _) = parse_buffer(LOG.as_bytes());
        assert_eq!(render(&tail(records.clone(), 2), false), b"two\nthree\n");
        assert_eq!(render(&tail(records.clone(), 0), false), b"");
        assert_eq!(render(&tail(records, -1), false), b"one\ntwo\nthree\n");
    }

    #[tokio::test]
    async fn since_and_limit_bytes_cut_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        std::fs::write(&p, LOG).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let since = "2024-01-01T00:00:02Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_nanosecond() as i64;
        stream(
            p.clone(),
            LogOptions {
                since: Some(since),
                limit_bytes: Some(5),
                ..Default::default()
            },
            tx,
            || async { false },
        )
        .await;
        assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b"two\nt"));
    }

    #[tokio::test]
    async fn following_sends_new_lines_until_the_container_stops() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        std::fs::write(&p, "2024-01-01T00:00:01Z stdout F a\n").unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let r2 = running.clone();
        let path = p.clone();
        let task = tokio::spawn(async move {
            stream(
                path,
                LogOptions {
                    follow: true,
                    ..Default::default()
                },
                tx,
                move || {
                    let r = r2.clone();
                    async move { r.load(std::sync::atomic::Ordering::SeqCst) }
                },
            )
            .await
        });
        assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b"a\n"));
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"2024-01-01T00:00:02Z stdout F b\n").unwrap();
        assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b"b\n"));
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        task.await.unwrap();
        assert!(
            rx.recv().await.is_none(),
            "the stream ends with the container"
        );
    }
}
