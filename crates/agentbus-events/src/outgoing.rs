//! [`Outgoing`]: what a bus can send — any typed [`Event`], a type-erased
//! `Box<dyn DynEvent>` (e.g. one decoded from JSON), or an already shared
//! `Arc<dyn DynEvent>`.
//!
//! It lives here, beside [`Event`], because one generic `send` for both needs two impls
//! that only the crate defining `Event` may write side by side (it alone knows that
//! `Box<dyn DynEvent>` is not an `Event`).

use std::any::TypeId;
use std::sync::Arc;

use crate::{DynEvent, Event, Seq};

mod sealed {
    pub trait Sealed {}
    impl<E: crate::Event> Sealed for E {}
    impl Sealed for Box<dyn crate::DynEvent> {}
    impl Sealed for std::sync::Arc<dyn crate::DynEvent> {}
}

/// An event a bus can send: every [`Event`] type, `Box<dyn DynEvent>`, and
/// `Arc<dyn DynEvent>`.
///
/// Sealed: it cannot be implemented outside this crate. Its methods are what a bus needs
/// to route the event before it owns it (type id and `type` string), then to stamp and
/// share it.
///
/// ```
/// use agentbus_events::{DynEvent, Outgoing, Seq};
/// use agentbus_events::base::ExceptionEvent;
///
/// fn routed_as(event: &impl Outgoing) -> &'static str {
///     event.event_type()
/// }
/// let typed = ExceptionEvent::default();
/// let erased: Box<dyn DynEvent> = Box::new(ExceptionEvent::default());
/// assert_eq!(routed_as(&typed), routed_as(&erased));
/// let shared = erased.into_stamped(Seq::FIRST);
/// assert_eq!(shared.meta().seq, Some(Seq::FIRST));
/// ```
pub trait Outgoing: sealed::Sealed + Send + 'static {
    /// The `TypeId` of the concrete event type (not of the box).
    fn event_type_id(&self) -> TypeId;
    /// The `type` string.
    fn event_type(&self) -> &'static str;
    /// Stamps `seq` on the event and shares it (one allocation for a typed event, none
    /// for a box).
    fn into_stamped(self, seq: Seq) -> Arc<dyn DynEvent>;
}

impl<E: Event> Outgoing for E {
    #[inline]
    fn event_type_id(&self) -> TypeId {
        TypeId::of::<E>()
    }

    #[inline]
    fn event_type(&self) -> &'static str {
        E::TYPE
    }

    #[inline]
    fn into_stamped(mut self, seq: Seq) -> Arc<dyn DynEvent> {
        self.meta_mut().seq = Some(seq);
        Arc::new(self)
    }
}

impl Outgoing for Box<dyn DynEvent> {
    #[inline]
    fn event_type_id(&self) -> TypeId {
        self.as_any().type_id()
    }

    #[inline]
    fn event_type(&self) -> &'static str {
        DynEvent::event_type(&**self)
    }

    #[inline]
    fn into_stamped(mut self, seq: Seq) -> Arc<dyn DynEvent> {
        self.meta_mut().seq = Some(seq);
        Arc::from(self)
    }
}

/// An event already on the heap: stamped in place, without a copy, when the `Arc` is its
/// only handle (as one made for sending is, e.g. by
/// [`ReactEvent::to_shared`](crate::react::ReactEvent::to_shared)); a shared one (an
/// event received from another bus) is copied first, so the other holders keep theirs as
/// it was.
///
/// ```
/// use std::sync::Arc;
/// use agentbus_events::{DynEvent, Outgoing, Seq};
/// use agentbus_events::base::ExceptionEvent;
///
/// let unique: Arc<dyn DynEvent> = Arc::new(ExceptionEvent::default());
/// let address = Arc::as_ptr(&unique) as *const ();
/// let stamped = unique.into_stamped(Seq::FIRST);
/// assert_eq!(stamped.meta().seq, Some(Seq::FIRST));
/// assert_eq!(Arc::as_ptr(&stamped) as *const (), address); // no copy
///
/// let held: Arc<dyn DynEvent> = Arc::new(ExceptionEvent::default());
/// let stamped = held.clone().into_stamped(Seq::FIRST);
/// assert_eq!(stamped.meta().seq, Some(Seq::FIRST));
/// assert_eq!(held.meta().seq, None); // the other handle is untouched
/// ```
impl Outgoing for Arc<dyn DynEvent> {
    #[inline]
    fn event_type_id(&self) -> TypeId {
        (**self).as_any().type_id()
    }

    #[inline]
    fn event_type(&self) -> &'static str {
        DynEvent::event_type(&**self)
    }

    #[inline]
    fn into_stamped(mut self, seq: Seq) -> Arc<dyn DynEvent> {
        match Arc::get_mut(&mut self) {
            Some(event) => {
                event.meta_mut().seq = Some(seq);
                self
            }
            None => {
                let mut copy = self.clone_box();
                copy.meta_mut().seq = Some(seq);
                Arc::from(copy)
            }
        }
    }
}
