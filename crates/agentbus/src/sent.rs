//! [`Sent`]: what a successful send reports.

use agentbus_events::Seq;

use crate::Refusal;

/// An event the bus accepted: its `seq`, and the subscribers that refused it (none in
/// the normal case; the list then costs no allocation).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use agentbus::EventManager;
/// use agentbus_events::base::ExceptionEvent;
///
/// let bus = EventManager::new();
/// let sent = bus.try_send(ExceptionEvent::default()).unwrap();
/// assert_eq!(sent.seq().get(), 1);
/// assert!(sent.is_complete());
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sent {
    /// The `seq` the bus stamped on the event.
    pub seq: Seq,
    /// The subscribers whose full queue refused the event, in subscription order. Every
    /// other subscriber of the event got it.
    pub refused: Vec<crate::Refusal>,
}

impl Sent {
    /// The `seq` the bus stamped on the event.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// The subscribers that refused the event (empty when every subscriber took it).
    pub fn refused(&self) -> &[Refusal] {
        &self.refused
    }

    /// Whether every subscriber of the event took it.
    pub fn is_complete(&self) -> bool {
        self.refused.is_empty()
    }
}
