//! A fake HTTP/1.1 server on loopback: answers each request with the next scripted
//! [`Reply`] — streaming bytes in given pieces with given delays, chunked or close
//! framed, cut, a status with headers, a hang, or a reply held until the test releases
//! it — and records every request it received ([`Received`]).
//!
//! # Examples
//!
//! In an async test, the server runs on the test's runtime:
//!
//! ```
//! use agentbus_test_support::{FakeServer, Reply, openai};
//! use serde_json::json;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let server = FakeServer::start(vec![
//!     openai::reply(&[openai::chunk(json!({"content": "hi"}), Some("stop"))]),
//!     Reply::status(429, r#"{"error":"slow down"}"#),
//! ])
//! .await;
//! let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
//! let body = r#"{"stream":true}"#;
//! let request = format!(
//!     "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
//!     body.len()
//! );
//! socket.write_all(request.as_bytes()).await.unwrap();
//! let mut response = String::new();
//! socket.read_to_string(&mut response).await.unwrap();
//! assert!(response.starts_with("HTTP/1.1 200"));
//! assert!(response.ends_with("data: [DONE]\n\n"));
//! let received = server.requests();
//! assert_eq!(received[0].path(), "/v1/chat/completions");
//! assert_eq!(received[0].body["stream"], json!(true));
//! # });
//! ```
//!
//! In a plain `#[test]` (say one spawning the CLI binary), the server runs on its own
//! thread and runtime, stopped when the handle is dropped:
//!
//! ```
//! use std::io::{Read, Write};
//!
//! use agentbus_test_support::{FakeServer, Reply};
//!
//! let server = FakeServer::start_blocking(vec![Reply::status(401, "no key")]);
//! let mut socket = std::net::TcpStream::connect(server.addr).unwrap();
//! socket.write_all(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
//! let mut response = String::new();
//! socket.read_to_string(&mut response).unwrap();
//! assert!(response.starts_with("HTTP/1.1 401"));
//! assert!(response.ends_with("no key"));
//! assert_eq!(server.requests().len(), 1);
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// How a streamed reply's body is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No length: the body ends when the connection closes.
    Close,
    /// `Transfer-Encoding: chunked`; `complete == false` cuts it without the final chunk.
    Chunked {
        /// Whether the terminating zero-length chunk is sent.
        complete: bool,
    },
    /// No length, and the connection is held open after the last piece: the body never
    /// ends (a stream that stalls).
    Open,
}

/// One scripted reply.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Status 200 `text/event-stream`, the pieces written (and flushed) one by one, each
    /// after its delay.
    Stream {
        /// `(delay before, bytes)`; empty pieces are skipped.
        pieces: Vec<(Duration, Vec<u8>)>,
        /// How the body is framed.
        framing: Framing,
    },
    /// A status with headers and a `content-length` body. The content type is
    /// `application/json` unless `headers` name one.
    Status {
        /// The status code.
        status: u16,
        /// Extra headers, in order.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// Read the request, never answer (the connection stays open for an hour).
    Hang,
    /// Wait until the [`Gate`] is released (or its [`Release`] dropped), then answer
    /// with `reply`.
    Held {
        /// What to wait for.
        gate: Gate,
        /// The reply then sent.
        reply: Box<Reply>,
    },
}

impl Reply {
    /// `body` split into pieces of at most `piece` bytes, each after `delay`, close
    /// framed.
    pub fn stream_split(body: &[u8], piece: usize, delay: Duration) -> Reply {
        Reply::Stream {
            pieces: body
                .chunks(piece.max(1))
                .map(|c| (delay, c.to_vec()))
                .collect(),
            framing: Framing::Close,
        }
    }

    /// `body` cut at the given offsets, each piece after `delay`, close framed.
    pub fn stream_cuts(body: &[u8], cuts: &[usize], delay: Duration) -> Reply {
        let mut pieces = Vec::new();
        let mut start = 0;
        for &cut in cuts {
            let cut = cut.min(body.len());
            if cut > start {
                pieces.push((delay, body[start..cut].to_vec()));
                start = cut;
            }
        }
        pieces.push((delay, body[start..].to_vec()));
        Reply::Stream {
            pieces,
            framing: Framing::Close,
        }
    }

    /// `status` with a JSON (or any text) `body` and no extra headers.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Status {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// `status` with the given content type and body.
    pub fn body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Status {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }

    /// This reply, sent only once `gate` is released.
    pub fn held(self, gate: Gate) -> Reply {
        Reply::Held {
            gate,
            reply: Box::new(self),
        }
    }
}

/// Holds [`Reply::Held`] replies back until its [`Release`] says so (or is dropped).
#[derive(Clone, Debug)]
pub struct Gate(watch::Receiver<bool>);

/// Opens a [`Gate`]: [`Release::release`], or dropping it.
#[derive(Debug)]
pub struct Release(watch::Sender<bool>);

/// A new closed gate and the handle that opens it.
///
/// # Examples
///
/// ```
/// use agentbus_test_support::{FakeServer, Reply, gate};
///
/// let (release, gate) = gate();
/// let server = FakeServer::start_blocking(vec![Reply::status(200, "{}").held(gate)]);
/// // … a client's request now waits until:
/// release.release();
/// # drop(server);
/// ```
pub fn gate() -> (Release, Gate) {
    let (tx, rx) = watch::channel(false);
    (Release(tx), Gate(rx))
}

impl Release {
    /// Lets every reply held by this gate go.
    pub fn release(self) {
        let _ = self.0.send(true);
    }
}

impl Gate {
    async fn wait(mut self) {
        // Err: the Release was dropped, which releases too.
        let _ = self.0.wait_for(|open| *open).await;
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request line and headers, as sent (with the final blank line).
    pub head: String,
    /// The body parsed as JSON, `Null` when it is not JSON.
    pub body: serde_json::Value,
    /// The body's bytes.
    pub raw_body: Vec<u8>,
}

impl Received {
    /// The request target (`/v1/chat/completions`).
    pub fn path(&self) -> &str {
        self.head.split_whitespace().nth(1).unwrap_or("")
    }

    /// Head and body as one text (the body decoded lossily).
    pub fn text(&self) -> String {
        format!("{}{}", self.head, String::from_utf8_lossy(&self.raw_body))
    }
}

/// What the server answers once the script has run out.
#[derive(Clone, Debug)]
enum Exhausted {
    /// `500 script exhausted`.
    Fail,
    /// The last scripted reply again.
    RepeatLast,
    /// This reply, every time.
    Always(Reply),
}

/// Options for a [`FakeServer`]; [`FakeServer::builder`].
#[derive(Debug)]
pub struct Builder {
    replies: Vec<Reply>,
    exhausted: Exhausted,
    keep_alive: bool,
}

impl Builder {
    /// Once the script has run out, answer with its last reply again (instead of a 500).
    pub fn repeat_last(mut self) -> Self {
        self.exhausted = Exhausted::RepeatLast;
        self
    }

    /// Once the script has run out, answer every request with `reply`.
    pub fn otherwise(mut self, reply: Reply) -> Self {
        self.exhausted = Exhausted::Always(reply);
        self
    }

    /// Keep connections open after a [`Reply::Status`] (no `connection: close`) and read
    /// further requests from them, as an HTTP/1.1 keep-alive server does. Streams still
    /// end their connection.
    pub fn keep_alive(mut self) -> Self {
        self.keep_alive = true;
        self
    }

    /// Starts serving on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or when no loopback port can be bound.
    pub async fn start(self) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("a bound listener's address");
        let shared = Shared::new(self);
        let received = Arc::clone(&shared.received);
        tokio::spawn(accept_loop(listener, shared));
        FakeServer::new(addr, received, None)
    }

    /// Starts serving on a thread of its own with its own runtime, for tests without a
    /// runtime (say ones that spawn the CLI binary). Dropping the server stops it.
    ///
    /// # Panics
    ///
    /// When the thread, its runtime or the loopback port cannot be set up.
    pub fn start_blocking(self) -> FakeServer {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let shared = Shared::new(self);
        let received = Arc::clone(&shared.received);
        std::thread::Builder::new()
            .name("fake-http-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the fake server");
                runtime.block_on(async move {
                    let listener = TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind a loopback port");
                    let addr = listener.local_addr().expect("a bound listener's address");
                    let _ = ready_tx.send(addr);
                    tokio::select! {
                        () = accept_loop(listener, shared) => {}
                        _ = stop_rx => {}
                    }
                });
                // Dropping the runtime cancels the connections still being served.
            })
            .expect("spawn the fake server's thread");
        let addr = ready_rx.recv().expect("the fake server started");
        FakeServer::new(addr, received, Some(stop_tx))
    }
}

/// The fake server: its address and what it received. See the [module](self) docs.
#[derive(Debug)]
pub struct FakeServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://{addr}/v1`, the base URL an OpenAI-compatible client is given.
    pub base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
    _stop: Option<oneshot::Sender<()>>,
}

impl FakeServer {
    /// Options: what to answer once the script runs out, keep-alive.
    pub fn builder(replies: Vec<Reply>) -> Builder {
        Builder {
            replies,
            exhausted: Exhausted::Fail,
            keep_alive: false,
        }
    }

    /// Serves `replies` in order on the current tokio runtime; requests beyond the
    /// script get `500 script exhausted`.
    pub async fn start(replies: Vec<Reply>) -> FakeServer {
        Self::builder(replies).start().await
    }

    /// Serves `replies` in order on a thread of its own (see
    /// [`Builder::start_blocking`]); requests beyond the script get
    /// `500 script exhausted`.
    pub fn start_blocking(replies: Vec<Reply>) -> FakeServer {
        Self::builder(replies).start_blocking()
    }

    fn new(
        addr: SocketAddr,
        received: Arc<Mutex<Vec<Received>>>,
        stop: Option<oneshot::Sender<()>>,
    ) -> Self {
        FakeServer {
            addr,
            base_url: format!("http://{addr}/v1"),
            received,
            _stop: stop,
        }
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Shared {
    script: Mutex<VecDeque<Reply>>,
    last: Mutex<Option<Reply>>,
    exhausted: Exhausted,
    keep_alive: bool,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Shared {
    fn new(builder: Builder) -> Arc<Self> {
        Arc::new(Shared {
            script: Mutex::new(builder.replies.into()),
            last: Mutex::new(None),
            exhausted: builder.exhausted,
            keep_alive: builder.keep_alive,
            received: Arc::default(),
        })
    }

    fn next_reply(&self) -> Reply {
        let next = self
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match next {
            Some(reply) => {
                *last = Some(reply.clone());
                reply
            }
            None => match (&self.exhausted, last.as_ref()) {
                (Exhausted::RepeatLast, Some(reply)) | (Exhausted::Always(reply), _) => {
                    reply.clone()
                }
                _ => Reply::status(500, "script exhausted"),
            },
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(serve_connection(socket, Arc::clone(&shared)));
    }
}

async fn serve_connection(mut socket: TcpStream, shared: Arc<Shared>) {
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut socket, &mut buffer).await else {
            return;
        };
        shared
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request);
        let reply = shared.next_reply();
        if !answer(&mut socket, reply, shared.keep_alive).await {
            return;
        }
    }
}

/// Reads one request (head, then `content-length` bytes) from `socket`; `buffer` keeps
/// what was read beyond it (the next request on a kept-alive connection).
async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Received> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let end = (head_end + length).min(buffer.len());
    let raw_body = buffer[head_end..end].to_vec();
    buffer.drain(..end);
    let body = serde_json::from_slice(&raw_body).unwrap_or(serde_json::Value::Null);
    Some(Received {
        head,
        body,
        raw_body,
    })
}

/// Writes `reply`; whether the connection may serve another request.
async fn answer(socket: &mut TcpStream, reply: Reply, keep_alive: bool) -> bool {
    let mut reply = reply;
    while let Reply::Held { gate, reply: inner } = reply {
        gate.wait().await;
        reply = *inner;
    }
    match reply {
        Reply::Held { .. } => unreachable!("unwrapped above"),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            false
        }
        Reply::Status {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} Status\r\n");
            if !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            {
                head.push_str("content-type: application/json\r\n");
            }
            head.push_str(&format!("content-length: {}\r\n", body.len()));
            if !keep_alive {
                head.push_str("connection: close\r\n");
            }
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let mut out = head.into_bytes();
            out.extend_from_slice(&body);
            if socket.write_all(&out).await.is_err() {
                return false;
            }
            let _ = socket.flush().await;
            if keep_alive {
                return true;
            }
            let _ = socket.shutdown().await;
            false
        }
        Reply::Stream { pieces, framing } => {
            stream(socket, pieces, framing).await;
            false
        }
    }
}

async fn stream(socket: &mut TcpStream, pieces: Vec<(Duration, Vec<u8>)>, framing: Framing) {
    let encoding = match framing {
        Framing::Close | Framing::Open => "",
        Framing::Chunked { .. } => "transfer-encoding: chunked\r\n",
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n{encoding}\r\n"
    );
    if socket.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    for (delay, piece) in pieces {
        if piece.is_empty() {
            continue;
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let result = match framing {
            Framing::Close | Framing::Open => socket.write_all(&piece).await,
            Framing::Chunked { .. } => {
                let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
                framed.extend_from_slice(&piece);
                framed.extend_from_slice(b"\r\n");
                socket.write_all(&framed).await
            }
        };
        if result.is_err() {
            return;
        }
        let _ = socket.flush().await;
    }
    match framing {
        Framing::Chunked { complete: true } => {
            let _ = socket.write_all(b"0\r\n\r\n").await;
        }
        Framing::Open => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Framing::Close | Framing::Chunked { complete: false } => {}
    }
    let _ = socket.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exchange(server: &FakeServer, body: &str) -> String {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        let request = format!(
            "POST /v1/x HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        socket.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn replies_in_order_then_the_exhaustion_policy() {
        let server = FakeServer::start(vec![Reply::status(201, "a")]).await;
        assert!(exchange(&server, "{}").await.starts_with("HTTP/1.1 201"));
        let second = exchange(&server, "x").await;
        assert!(second.starts_with("HTTP/1.1 500"), "{second}");
        assert!(second.ends_with("script exhausted"), "{second}");
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].body, serde_json::json!({}));
        assert_eq!(requests[1].body, serde_json::Value::Null);
        assert_eq!(requests[1].raw_body, b"x");

        let server = FakeServer::builder(vec![Reply::status(201, "a")])
            .repeat_last()
            .start()
            .await;
        for _ in 0..3 {
            assert!(exchange(&server, "{}").await.ends_with("\r\n\r\na"));
        }
    }

    #[tokio::test]
    async fn chunked_framing_and_cuts() {
        let server = FakeServer::start(vec![
            Reply::Stream {
                pieces: vec![(Duration::ZERO, b"abc".to_vec())],
                framing: Framing::Chunked { complete: true },
            },
            Reply::Stream {
                pieces: vec![(Duration::ZERO, b"abc".to_vec())],
                framing: Framing::Chunked { complete: false },
            },
        ])
        .await;
        assert!(
            exchange(&server, "")
                .await
                .ends_with("3\r\nabc\r\n0\r\n\r\n")
        );
        assert!(exchange(&server, "").await.ends_with("3\r\nabc\r\n"));
    }

    #[tokio::test]
    async fn keep_alive_serves_several_requests_on_one_connection() {
        let server = FakeServer::builder(vec![])
            .otherwise(Reply::body(200, "application/x-protobuf", Vec::new()))
            .keep_alive()
            .start()
            .await;
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        socket
            .write_all(b"POST /a HTTP/1.1\r\ncontent-length: 1\r\n\r\n1POST /b HTTP/1.1\r\ncontent-length: 2\r\n\r\n22")
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut chunk = [0u8; 1024];
        while seen.windows(12).filter(|w| w == b"HTTP/1.1 200").count() < 2 {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed early");
            seen.extend_from_slice(&chunk[..n]);
        }
        let paths: Vec<String> = server
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.path(), String::from_utf8_lossy(&r.raw_body)))
            .collect();
        assert_eq!(paths, ["/a 1", "/b 22"]);
    }

    #[tokio::test]
    async fn a_held_reply_waits_for_its_release() {
        let (release, gate) = gate();
        let server = FakeServer::start(vec![Reply::status(200, "late").held(gate)]).await;
        let pending = tokio::spawn({
            let addr = server.addr;
            async move {
                let server = FakeServer::new(addr, Arc::default(), None);
                exchange(&server, "").await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!pending.is_finished(), "answered before the release");
        assert_eq!(server.requests().len(), 1, "the request was read");
        release.release();
        assert!(pending.await.unwrap().ends_with("late"));
    }

    #[test]
    fn the_blocking_server_stops_when_dropped() {
        let server = FakeServer::start_blocking(vec![Reply::Hang]);
        let addr = server.addr;
        drop(server);
        // The listener goes with the runtime: connecting is refused soon after.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(addr).is_ok() {
            assert!(std::time::Instant::now() < deadline, "still listening");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
