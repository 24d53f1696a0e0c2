//! Dev-only helpers shared by agentbus's test suites (`publish = false`; a
//! dev-dependency only).
//!
//! - [`server`]: a loopback fake HTTP/1.1 server answering with scripted replies
//!   (streams in pieces with delays, chunked or close framing, cut connections, statuses
//!   with headers, hangs, replies held until the test releases them) and recording every
//!   request. Usable from `#[tokio::test]`s ([`FakeServer::start`]) and from plain
//!   `#[test]`s that spawn the CLI binary ([`FakeServer::start_blocking`]).
//! - [`openai`]: OpenAI-compatible Chat Completions SSE chunks, usage chunks and bodies.
//! - [`services`]: whether PostgreSQL and the embedded model are here, with one rule for
//!   when they are not: skip with a note on stderr, or fail when
//!   `AGENTBUS_REQUIRE_SERVICES=1` (CI sets it).
//! - [`closed_port`]: a loopback address nothing listens on.

pub mod openai;
pub mod server;
pub mod services;

pub use server::{Builder, FakeServer, Framing, Gate, Received, Release, Reply, gate};

/// A loopback address nothing listens on (bound, then released): connecting to it is
/// refused.
///
/// # Examples
///
/// ```
/// let addr = agentbus_test_support::closed_port();
/// assert!(std::net::TcpStream::connect(addr).is_err());
/// ```
pub fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("a bound listener's address")
}
