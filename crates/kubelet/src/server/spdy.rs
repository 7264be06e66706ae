//! SPDY/3.1 as Kubernetes streams use it (the framing of `moby/spdystream`): one connection
//! carries many streams opened with SYN_STREAM (headers zlib-compressed with SPDY's dictionary,
//! one compression context per direction), answered with SYN_REPLY, carrying DATA frames, each
//! side half-closing with FIN. Peers here do no flow control, so neither do we: WINDOW_UPDATE and
//! SETTINGS are read and ignored.
//!
//! The same code serves kubectl (the kubelet's side) and talks to the runtime's streaming
//! server (the client side).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const FLAG_FIN: u8 = 0x01;
/// Largest DATA payload we send in one frame.
const MAX_CHUNK: usize = 32 * 1024;
/// Largest frame we accept.
const MAX_FRAME: usize = 16 << 20;

/// The SPDY/3 header compression dictionary: length-prefixed header names and values, then a
/// run of common strings (status codes and texts, dates, media types).
pub fn dictionary() -> &'static [u8] {
    static DICT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DICT.get_or_init(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TAIL: &str = concat!(
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
            "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
            "400 Bad Request401 Unauthorized403 Forbidden404 Not Found",
            "500 Internal Server Error501 Not Implemented503 Service Unavailable",
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
            "chunked,text/html,image/png,image/jpg,image/gif,application/xml,",
            "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
            "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
        );
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TAIL.as_bytes());
        d
    })
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("spdy: {0}")]
    Protocol(String),
    #[error("spdy: connection closed")]
    Closed,
    #[error("spdy: {0}")]
    Io(#[from] std::io::Error),
}

pub type Headers = Vec<(String, String)>;

/// Looks a header up (names are lower case on the wire).
pub fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

struct HeaderCodec {
    deflate: Compress,
    inflate: Decompress,
    inflate_dict_set: bool,
}

impl HeaderCodec {
    fn new() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        deflate
            .set_dictionary(dictionary())
            .expect("the SPDY dictionary is accepted");
        HeaderCodec {
            deflate,
            inflate: Decompress::new(true),
            inflate_dict_set: false,
        }
    }

    fn encode(&mut self, headers: &Headers) -> Vec<u8> {
        let mut raw = BytesMut::new();
        raw.put_u32(headers.len() as u32);
        for (k, v) in headers {
            let k = k.to_ascii_lowercase();
            raw.put_u32(k.len() as u32);
            raw.put_slice(k.as_bytes());
            raw.put_u32(v.len() as u32);
            raw.put_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input: &[u8] = &raw;
        loop {
            out.reserve(1024);
            let before_in = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflate does not fail on memory buffers");
            let used = (self.deflate.total_in() - before_in) as usize;
            input = &input[used..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if status == Status::BufError && input.is_empty() {
                break;
            }
        }
        out
    }

    fn decode(&mut self, block: &[u8]) -> Result<Headers, Error> {
        let mut out: Vec<u8> = Vec::with_capacity(block.len() * 4 + 256);
        let mut input = block;
        loop {
            out.reserve(4096);
            let before_in = self.inflate.total_in();
            let r = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.inflate.total_in() - before_in) as usize;
            input = &input[used..];
            match r {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() && !self.inflate_dict_set => {
                    self.inflate
                        .set_dictionary(dictionary())
                        .map_err(|e| Error::Protocol(format!("header dictionary: {e}")))?;
                    self.inflate_dict_set = true;
                    continue;
                }
                Err(e) => return Err(Error::Protocol(format!("header block: {e}"))),
            }
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && input.is_empty() {
                break;
            }
        }
        let mut b = &out[..];
        let need = |b: &&[u8], n: usize| {
            if b.remaining() < n {
                Err(Error::Protocol("truncated header block".into()))
            } else {
                Ok(())
            }
        };
        need(&b, 4)?;
        let n = b.get_u32();
        let mut headers = Vec::new();
        for _ in 0..n {
            need(&b, 4)?;
            let kl = b.get_u32() as usize;
            need(&b, kl)?;
            let k = String::from_utf8_lossy(&b[..kl]).to_string();
            b.advance(kl);
            need(&b, 4)?;
            let vl = b.get_u32() as usize;
            need(&b, vl)?;
            let v = String::from_utf8_lossy(&b[..vl]).to_string();
            b.advance(vl);
            for part in v.split('\0') {
                headers.push((k.clone(), part.to_string()));
            }
        }
        Ok(headers)
    }
}

enum Out {
    Control {
        kind: u16,
        flags: u8,
        payload: Vec<u8>,
    },
    ControlHeaders {
        kind: u16,
        flags: u8,
        prefix: Vec<u8>,
        headers: Headers,
    },
    Data {
        id: u32,
        flags: u8,
        data: Bytes,
    },
}

struct StreamState {
    data: mpsc::UnboundedSender<Bytes>,
    reply: Option<oneshot::Sender<Headers>>,
}

struct Inner {
    out: mpsc::UnboundedSender<Out>,
    streams: Mutex<HashMap<u32, StreamState>>,
    next_id: AtomicU32,
}

/// One end of a SPDY connection.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("spdy::Connection").finish_non_exhaustive()
    }
}

/// A stream: the headers it was opened with, incoming data, and a way to write.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    rx: mpsc::UnboundedReceiver<Bytes>,
    conn: Arc<Inner>,
    write_closed: bool,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("spdy::Stream")
            .field("id", &self.id)
            .finish()
    }
}

/// The writing half of a stream, usable from another task.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    conn: Arc<Inner>,
}

impl StreamWriter {
    pub fn write(&self, data: Bytes) -> Result<(), Error> {
        for chunk in data.chunks(MAX_CHUNK) {
            self.conn
                .out
                .send(Out::Data {
                    id: self.id,
                    flags: 0,
                    data: data.slice_ref(chunk),
                })
                .map_err(|_| Error::Closed)?;
        }
        Ok(())
    }

    /// Half-closes: the peer reads EOF.
    pub fn close(&self) {
        let _ = self.conn.out.send(Out::Data {
            id: self.id,
            flags: FLAG_FIN,
            data: Bytes::new(),
        });
    }
}

impl Stream {
    /// The next chunk of data; None once the peer half-closed.
    pub async fn read(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    pub fn writer(&self) -> StreamWriter {
        StreamWriter {
            id: self.id,
            conn: self.conn.clone(),
        }
    }

    pub fn write(&self, data: Bytes) -> Result<(), Error> {
        self.writer().write(data)
    }

    /// Answers the peer's SYN_STREAM (the opener waits for it).
    pub fn reply(&self, headers: Headers) {
        let _ = self.conn.out.send(Out::ControlHeaders {
            kind: SYN_REPLY,
            flags: 0,
            prefix: self.id.to_be_bytes().to_vec(),
            headers,
        });
    }

    pub fn close_write(&mut self) {
        if !self.write_closed {
            self.writer().close();
            self.write_closed = true;
        }
    }

    /// Splits into the reading half and a writer.
    pub fn split(self) -> (mpsc::UnboundedReceiver<Bytes>, StreamWriter) {
        let w = StreamWriter {
            id: self.id,
            conn: self.conn.clone(),
        };
        (self.rx, w)
    }
}

impl Connection {
    /// Starts a connection over `io`. Servers number their streams evenly, clients oddly.
    /// Streams the peer opens arrive on the returned receiver.
    pub fn new<S>(io: S, server: bool) -> (Connection, mpsc::UnboundedReceiver<Stream>)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            out: out_tx,
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(if server { 2 } else { 1 }),
        });
        let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
        let codec = Arc::new(Mutex::new(HeaderCodec::new()));
        tokio::spawn(write_loop(writer, out_rx, codec.clone()));
        tokio::spawn(read_loop(reader, inner.clone(), codec, incoming_tx));
        (Connection { inner }, incoming_rx)
    }

    /// Opens a stream and waits for the peer's SYN_REPLY.
    pub async fn open(&self, headers: Headers) -> Result<Stream, Error> {
        let id = self.inner.next_id.fetch_add(2, Ordering::SeqCst);
        let (data_tx, data_rx) = mpsc::unbounded_channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        self.inner.streams.lock().insert(
            id,
            StreamState {
                data: data_tx,
                reply: Some(reply_tx),
            },
        );
        let mut prefix = Vec::with_capacity(10);
        prefix.extend_from_slice(&id.to_be_bytes());
        prefix.extend_from_slice(&0u32.to_be_bytes());
        prefix.extend_from_slice(&[0, 0]);
        self.inner
            .out
            .send(Out::ControlHeaders {
                kind: SYN_STREAM,
                flags: 0,
                prefix,
                headers: headers.clone(),
            })
            .map_err(|_| Error::Closed)?;
        reply_rx.await.map_err(|_| Error::Closed)?;
        Ok(Stream {
            id,
            headers,
            rx: data_rx,
            conn: self.inner.clone(),
            write_closed: false,
        })
    }

    /// Ends the connection (GOAWAY); the writer stops once everything queued is sent.
    pub fn close(&self) {
        let mut p = Vec::with_capacity(8);
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        let _ = self.inner.out.send(Out::Control {
            kind: GOAWAY,
            flags: 0,
            payload: p,
        });
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::UnboundedReceiver<Out>,
    codec: Arc<Mutex<HeaderCodec>>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut goaway = false;
        // Batch what is queued into one write.
        while let Some(item) = next.take() {
            match item {
                Out::Control {
                    kind,
                    flags,
                    payload,
                } => {
                    goaway |= kind == GOAWAY;
                    put_control(&mut buf, kind, flags, &payload);
                }
                Out::ControlHeaders {
                    kind,
                    flags,
                    mut prefix,
                    headers,
                } => {
                    let block = codec.lock().encode(&headers);
                    prefix.extend_from_slice(&block);
                    put_control(&mut buf, kind, flags, &prefix);
                }
                Out::Data { id, flags, data } => {
                    buf.put_u32(id & 0x7fff_ffff);
                    buf.put_u8(flags);
                    let len = data.len() as u32;
                    buf.put_slice(&len.to_be_bytes()[1..]);
                    buf.put_slice(&data);
                }
            }
            if buf.len() < 256 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
            return;
        }
        buf.clear();
        if goaway {
            let _ = w.shutdown().await;
            return;
        }
    }
    let _ = w.shutdown().await;
}

fn put_control(buf: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]) {
    buf.put_u16(0x8000 | VERSION);
    buf.put_u16(kind);
    buf.put_u8(flags);
    let len = payload.len() as u32;
    buf.put_slice(&len.to_be_bytes()[1..]);
    buf.put_slice(payload);
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut r: R,
    inner: Arc<Inner>,
    codec: Arc<Mutex<HeaderCodec>>,
    incoming: mpsc::UnboundedSender<Stream>,
) {
    let result: Result<(), Error> = async {
        let mut head = [0u8; 8];
        loop {
            if let Err(e) = r.read_exact(&mut head).await {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    return Ok(());
                }
                return Err(e.into());
            }
            let flags = head[4];
            let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
            if len > MAX_FRAME {
                return Err(Error::Protocol(format!(
                    "frame of {len} bytes is too large"
                )));
            }
            let mut payload = vec![0u8; len];
            r.read_exact(&mut payload).await?;
            if head[0] & 0x80 == 0 {
                let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
                let mut streams = inner.streams.lock();
                if let Some(s) = streams.get(&id) {
                    if !payload.is_empty() {
                        let _ = s.data.send(Bytes::from(payload));
                    }
                    if flags & FLAG_FIN != 0 {
                        // Dropping the sender ends the reader's stream.
                        streams.remove(&id);
                    }
                }
                continue;
            }
            let kind = u16::from_be_bytes([head[2], head[3]]);
            let id = || {
                payload
                    .get(0..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff)
                    .unwrap_or(0)
            };
            match kind {
                SYN_STREAM => {
                    if payload.len() < 10 {
                        return Err(Error::Protocol("short SYN_STREAM".into()));
                    }
                    let sid = id();
                    let headers = codec.lock().decode(&payload[10..])?;
                    let (tx, rx) = mpsc::unbounded_channel();
                    if flags & FLAG_FIN == 0 {
                        inner.streams.lock().insert(
                            sid,
                            StreamState {
                                data: tx,
                                reply: None,
                            },
                        );
                    }
                    let _ = incoming.send(Stream {
                        id: sid,
                        headers,
                        rx,
                        conn: inner.clone(),
                        write_closed: false,
                    });
                }
                SYN_REPLY => {
                    let sid = id();
                    let headers = codec.lock().decode(payload.get(4..).unwrap_or(&[]))?;
                    let mut streams = inner.streams.lock();
                    if let Some(s) = streams.get_mut(&sid)
                        && let Some(r) = s.reply.take()
                    {
                        let _ = r.send(headers);
                    }
                    if flags & FLAG_FIN != 0 {
                        streams.remove(&sid);
                    }
                }
                HEADERS => {
                    let sid = id();
                    let _ = codec.lock().decode(payload.get(4..).unwrap_or(&[]))?;
                    if flags & FLAG_FIN != 0 {
                        inner.streams.lock().remove(&sid);
                    }
                }
                RST_STREAM => {
                    inner.streams.lock().remove(&id());
                }
                PING => {
                    let _ = inner.out.send(Out::Control {
                        kind: PING,
                        flags: 0,
                        payload,
                    });
                }
                GOAWAY => return Ok(()),
                SETTINGS | WINDOW_UPDATE => {}
                other => {
                    tracing::debug!(kind = other, "ignoring unknown SPDY control frame");
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "SPDY connection ended");
    }
    // Everyone reading learns the connection is gone.
    inner.streams.lock().clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_spdy3s() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert!(d.starts_with(b"\0\0\0\x07options\0\0\0\x04head"));
        assert!(d.ends_with(b"utf-8charset=iso-8859-1,utf-,*,enq=0."));
        // zlib's dictionary id is the Adler-32 of the dictionary; peers check it.
        let mut a: u32 = 1;
        let mut b: u32 = 0;
        for byte in d {
            a = (a + *byte as u32) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[test]
    fn header_blocks_round_trip_through_one_compression_context() {
        let mut a = HeaderCodec::new();
        let mut b = HeaderCodec::new();
        for i in 0..3 {
            let h = vec![
                ("streamtype".to_string(), "data".to_string()),
                ("port".to_string(), format!("{}", 8000 + i)),
                ("requestid".to_string(), i.to_string()),
            ];
            let block = a.encode(&h);
            assert_eq!(b.decode(&block).unwrap(), h);
        }
    }

    #[tokio::test]
    async fn streams_carry_data_both_ways_and_half_close() {
        let (c, s) = tokio::io::duplex(1 << 16);
        let (client, _) = Connection::new(c, false);
        let (_server, mut incoming) = Connection::new(s, true);
        let server = tokio::spawn(async move {
            let mut st = incoming.recv().await.unwrap();
            assert_eq!(header(&st.headers, "streamType"), Some("data"));
            st.reply(vec![]);
            let mut got = Vec::new();
            while let Some(b) = st.read().await {
                got.extend_from_slice(&b);
            }
            st.write(Bytes::from(got.iter().rev().copied().collect::<Vec<u8>>()))
                .unwrap();
            st.close_write();
        });
        let mut st = client
            .open(vec![("streamType".into(), "data".into())])
            .await
            .unwrap();
        st.write(Bytes::from_static(b"hello")).unwrap();
        st.close_write();
        let mut back = Vec::new();
        while let Some(b) = st.read().await {
            back.extend_from_slice(&b);
        }
        assert_eq!(back, b"olleh");
        server.await.unwrap();
    }
}
