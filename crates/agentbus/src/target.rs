//! [`EventSet`]: what a handler receives — one event type (`Arc<E>`), a union of types
//! (an enum made with [`event_union!`](crate::event_union)), or every type
//! (`Arc<dyn DynEvent>`, a wildcard subscriber).

use std::any::TypeId;
use std::sync::Arc;

use agentbus_events::{DynEvent, Event, EventInfo};

/// The argument type of a handler, and so the set of event types it subscribes to.
///
/// Implemented for `Arc<E>` (one type), for `Arc<dyn DynEvent>` (every type: a wildcard
/// subscriber, which sees the type string via `event_type()`, the bus `seq` via
/// `meta().seq` and can serialise with `write_wire`), and by
/// [`event_union!`](crate::event_union) for enums of several types.
///
/// A handler takes exactly one argument, so a handler with two event parameters does not
/// compile:
///
/// ```compile_fail
/// use std::sync::Arc;
/// use agentbus::EventManager;
/// use agentbus_events::base::ExceptionEvent;
/// use agentbus_events::bus::SubscriberLaggedEvent;
///
/// async fn two(bus: EventManager) {
///     bus.subscribe("two", |a: Arc<ExceptionEvent>, b: Arc<SubscriberLaggedEvent>| async move {})
///         .unwrap();
/// }
/// ```
pub trait EventSet: Sized + Send + 'static {
    /// The event types in the set; `None` means every type (wildcard).
    fn members() -> Option<Vec<EventInfo>>;
    /// The handler's argument for `event`, or the event back if it is not in the set.
    fn from_event(event: Arc<dyn DynEvent>) -> Result<Self, Arc<dyn DynEvent>>;
}

impl<E: Event> EventSet for Arc<E> {
    fn members() -> Option<Vec<EventInfo>> {
        Some(vec![EventInfo::of::<E>()])
    }

    fn from_event(event: Arc<dyn DynEvent>) -> Result<Self, Arc<dyn DynEvent>> {
        downcast_arc::<E>(event)
    }
}

impl EventSet for Arc<dyn DynEvent> {
    fn members() -> Option<Vec<EventInfo>> {
        None
    }

    fn from_event(event: Arc<dyn DynEvent>) -> Result<Self, Arc<dyn DynEvent>> {
        Ok(event)
    }
}

/// The concrete `Arc<E>` inside a type-erased event, or the event back if it is not an
/// `E`. Costs one `TypeId` comparison; no allocation, no reference-count change.
pub fn downcast_arc<E: Event>(event: Arc<dyn DynEvent>) -> Result<Arc<E>, Arc<dyn DynEvent>> {
    if event.as_any().type_id() == TypeId::of::<E>() {
        let raw = Arc::into_raw(event) as *const E;
        // SAFETY: the value behind the pointer is an `E` (its `TypeId`, reported by the
        // blanket `DynEvent` impl's `as_any`, is `E`'s). Casting the fat `*const dyn
        // DynEvent` to `*const E` keeps the data pointer, and `Arc<dyn DynEvent>` was made
        // from an `Arc<E>` (unsizing), so the allocation has `E`'s layout: this is exactly
        // what `Arc::<dyn Any>::downcast` does.
        Ok(unsafe { Arc::from_raw(raw) })
    } else {
        Err(event)
    }
}

/// Declares an enum of event types that one handler can subscribe to: a **union
/// subscription**. Each variant holds an `Arc` of its event type.
///
/// ```
/// use std::sync::Arc;
/// use agentbus::event_union;
/// use agentbus_events::base::ExceptionEvent;
/// use agentbus_events::bus::SubscriberLaggedEvent;
///
/// event_union! {
///     /// Either a handler failure or a lagging subscriber.
///     pub enum Trouble {
///         /// A handler failed.
///         Failed(ExceptionEvent),
///         /// A subscriber lost events.
///         Lagged(SubscriberLaggedEvent),
///     }
/// }
///
/// # async fn demo(bus: agentbus::EventManager) {
/// bus.subscribe("trouble", |t: Trouble| async move {
///     match t {
///         Trouble::Failed(e) => println!("{} failed", e.handler),
///         Trouble::Lagged(e) => println!("{} lagged", e.subscriber),
///     }
/// })
/// .unwrap();
/// # }
/// ```
#[macro_export]
macro_rules! event_union {
    (
        $(#[$attr:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vattr:meta])* $variant:ident($ty:ty) ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Clone, Debug)]
        $vis enum $name {
            $( $(#[$vattr])* $variant(::std::sync::Arc<$ty>), )+
        }

        impl $crate::EventSet for $name {
            fn members() -> ::std::option::Option<::std::vec::Vec<$crate::__events::EventInfo>> {
                ::std::option::Option::Some(::std::vec![
                    $( $crate::__events::EventInfo::of::<$ty>(), )+
                ])
            }

            fn from_event(
                event: ::std::sync::Arc<dyn $crate::__events::DynEvent>,
            ) -> ::std::result::Result<Self, ::std::sync::Arc<dyn $crate::__events::DynEvent>> {
                $(
                    let event = match $crate::downcast_arc::<$ty>(event) {
                        ::std::result::Result::Ok(e) => return ::std::result::Result::Ok($name::$variant(e)),
                        ::std::result::Result::Err(e) => e,
                    };
                )+
                ::std::result::Result::Err(event)
            }
        }
    };
}
