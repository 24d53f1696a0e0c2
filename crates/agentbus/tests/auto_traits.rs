//! The public types and futures of the bus are `Send`/`Sync` (or deliberately not), as
//! tokio's `tests/async_send_sync.rs` checks its own: a change that loses an auto trait
//! fails to compile here instead of in a user's `tokio::spawn`.

#![allow(dead_code, clippy::diverging_sub_expression)]

use std::sync::Arc;
use std::time::Duration;

use agentbus::{
    BuildError, BusStats, EventManager, EventManagerBuilder, EventStream, MergeError, Refusal,
    RegisterError, SendError, SendJsonError, Sent, ShutdownReport, SubscribeError,
    SubscribeOptions, SubscriberStats, SubscriptionHandle, WaitError,
};
use agentbus_events::base::ExceptionEvent;
use agentbus_events::{DynEvent, Seq};

fn send_sync<T: Send + Sync>() {}
fn send_sync_unpin<T: Send + Sync + Unpin>() {}
fn send<T: Send>(_: &T) {}
fn send_static<T: Send + 'static>(_: &T) {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync_unpin::<EventManager>();
    send_sync_unpin::<EventManagerBuilder>();
    send_sync_unpin::<SubscriptionHandle>();
    send_sync_unpin::<SubscribeOptions>();
    send_sync_unpin::<Sent>();
    send_sync_unpin::<Refusal>();
    send_sync_unpin::<Seq>();
    send_sync_unpin::<BusStats>();
    send_sync_unpin::<SubscriberStats>();
    send_sync_unpin::<ShutdownReport>();
    send_sync_unpin::<BuildError>();
    send_sync_unpin::<RegisterError>();
    send_sync_unpin::<SubscribeError>();
    send_sync_unpin::<SendError>();
    send_sync_unpin::<SendJsonError>();
    send_sync_unpin::<WaitError>();
    send_sync_unpin::<MergeError>();
    send_sync_unpin::<EventStream<Arc<ExceptionEvent>>>();
    send_sync_unpin::<EventStream<Arc<dyn DynEvent>>>();
}

/// The futures the bus returns can be spawned (`Send + 'static` when the manager is
/// owned by the future). Checked without running them.
#[test]
fn public_futures_are_send() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bus = EventManager::with_handle(runtime.handle().clone());
    let b = bus.clone();
    send_static(&async move { b.send(ExceptionEvent::default()).await });
    let b = bus.clone();
    let erased: Box<dyn DynEvent> = Box::new(ExceptionEvent::default());
    send_static(&async move { b.send(erased).await });
    let b = bus.clone();
    send_static(&async move { b.send_json(b"{}").await });
    let b = bus.clone();
    send_static(&async move { b.idle().await });
    let b = bus.clone();
    send_static(&async move { b.wait(Duration::from_secs(1)).await });
    let b = bus.clone();
    send_static(&async move { b.shutdown(Duration::from_secs(1)).await });
    // The futures themselves, borrowed.
    send(&bus.send(ExceptionEvent::default()));
    send(&bus.idle());
    send(&bus.wait(Duration::from_secs(1)));
    send(&bus.shutdown(Duration::from_secs(1)));
}
