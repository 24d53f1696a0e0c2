//! Shared by the tests: a server of their own, and a bus subscriber that collects events.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentbus::EventManager;
use agentbus_events::DynEvent;
use agentbus_nats::server::LocalServer;

/// A fresh `nats-server -js` with its own store directory.
pub struct TestServer {
    pub server: LocalServer,
    pub dir: tempfile::TempDir,
}

pub fn server() -> TestServer {
    server_with(&["-js"])
}

pub fn server_with(args: &[&str]) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start_with(dir.path(), args).expect(
        "these tests need nats-server (Debian: apt-get install nats-server; or set NATS_SERVER)",
    );
    TestServer { server, dir }
}

/// Every event a wildcard subscriber saw, in order.
#[derive(Clone, Default)]
pub struct Collected(pub Arc<Mutex<Vec<Arc<dyn DynEvent>>>>);

impl Collected {
    pub fn attach(bus: &EventManager, name: &str) -> Self {
        let collected = Self::default();
        let sink = collected.0.clone();
        bus.subscribe(name, move |e: Arc<dyn DynEvent>| {
            let sink = sink.clone();
            async move { sink.lock().unwrap().push(e) }
        })
        .unwrap();
        collected
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn events(&self) -> Vec<Arc<dyn DynEvent>> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until at least `n` events arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.len() < n {
            assert!(
                start.elapsed() < timeout,
                "only {} of {n} events arrived within {timeout:?}",
                self.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `event` without its bus seq (each bus stamps its own).
pub fn without_seq(event: &dyn DynEvent) -> Box<dyn DynEvent> {
    let mut copy = event.clone_box();
    copy.meta_mut().seq = None;
    copy
}
