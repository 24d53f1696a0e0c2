//! A fake LLM server on loopback: answers each request with the next scripted reply,
//! streaming bytes in given pieces with given delays, and records what it received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a reply's body is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No length: the body ends when the connection closes.
    Close,
    /// `Transfer-Encoding: chunked`; `complete == false` cuts it without the final chunk.
    Chunked { complete: bool },
}

/// One scripted reply.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Status 200 `text/event-stream`, the pieces written one by one after their delays.
    Stream {
        pieces: Vec<(Duration, Vec<u8>)>,
        framing: Framing,
    },
    /// A status with headers and a body.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Accept the connection, read the request, never answer.
    Hang,
}

impl Reply {
    /// `body` split into pieces of at most `piece` bytes, each after `delay`.
    pub fn stream_split(body: &[u8], piece: usize, delay: Duration) -> Reply {
        Reply::Stream {
            pieces: body
                .chunks(piece.max(1))
                .map(|c| (delay, c.to_vec()))
                .collect(),
            framing: Framing::Close,
        }
    }

    /// `body` at the given cut points.
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

    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Status {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
        }
    }
}

/// A received request.
#[derive(Clone, Debug)]
pub struct Received {
    pub head: String,
    pub body: serde_json::Value,
}

/// The fake server.
pub struct FakeServer {
    pub base_url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl FakeServer {
    /// Starts serving `replies` in order; requests beyond the script get a 500.
    pub async fn start(replies: Vec<Reply>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(replies)));
        let log = Arc::clone(&received);
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let reply = script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or_else(|| Reply::status(500, "script exhausted"));
                let log = Arc::clone(&log);
                tokio::spawn(serve(socket, reply, log));
            }
        });
        FakeServer {
            base_url: format!("http://{addr}/v1"),
            received,
        }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn read_request(socket: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..]).unwrap_or(serde_json::Value::Null);
    Some(Received { head, body })
}

async fn serve(mut socket: TcpStream, reply: Reply, log: Arc<Mutex<Vec<Received>>>) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    log.lock().unwrap().push(request);
    match reply {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Reply::Status {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Status\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
        Reply::Stream { pieces, framing } => {
            let encoding = match framing {
                Framing::Close => "",
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
                    Framing::Close => socket.write_all(&piece).await,
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
            if framing == (Framing::Chunked { complete: true }) {
                let _ = socket.write_all(b"0\r\n\r\n").await;
            }
            let _ = socket.shutdown().await;
        }
    }
}
