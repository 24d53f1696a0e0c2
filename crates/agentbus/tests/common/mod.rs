//! Test events and helpers shared by the bus tests.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use agentbus_events::define_event;

define_event! {
    /// A test event carrying a number.
    #[event(type = "test.ping", domain = Plugin, base = event)]
    pub struct Ping {
        /// The number.
        pub n: u64,
    }
}

define_event! {
    /// Another test event carrying a number.
    #[event(type = "test.pong", domain = Plugin, base = event)]
    pub struct Pong {
        /// The number.
        pub n: u64,
    }
}

define_event! {
    /// A test event nobody registers.
    #[event(type = "test.stranger", domain = Plugin, base = event)]
    pub struct Stranger {
        /// The number.
        pub n: u64,
    }
}

pub fn ping(n: u64) -> Ping {
    Ping {
        n,
        ..Default::default()
    }
}

pub fn pong(n: u64) -> Pong {
    Pong {
        n,
        ..Default::default()
    }
}

/// A shared list handlers append to.
#[derive(Clone)]
pub struct Log<T>(pub Arc<Mutex<Vec<T>>>);

impl<T> Default for Log<T> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T: Clone> Log<T> {
    pub fn push(&self, v: T) {
        self.0.lock().unwrap().push(v);
    }
    pub fn get(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A bus with the test types registered.
pub fn bus() -> agentbus::EventManager {
    let bus = agentbus::EventManager::new();
    bus.register::<Ping>().unwrap();
    bus.register::<Pong>().unwrap();
    bus
}

/// A subscriber whose handler blocks until the gate opens.
pub fn stalled(
    bus: &agentbus::EventManager,
    options: agentbus::SubscribeOptions,
) -> (Arc<tokio::sync::Notify>, agentbus::SubscriptionHandle) {
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let handle = bus
        .subscribe_with("stalled", options, move |_: Arc<Ping>| {
            let g = g.clone();
            async move { g.notified().await }
        })
        .unwrap();
    (gate, handle)
}
