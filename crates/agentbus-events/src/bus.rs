//! Events the bus publishes about its own delivery: a subscriber falling behind.

use crate::define_event;

define_event! {
    /// A subscriber's queue was full and its overflow policy is drop-oldest: the bus
    /// dropped its oldest queued deliveries to make room.
    ///
    /// Published once when a subscriber starts losing events, then again each time it
    /// loses events after having caught up (an episode of lag gives one event, not one per
    /// dropped delivery). `dropped` counts the deliveries lost in this episode up to the
    /// moment of publishing; `total_dropped` counts every delivery the subscriber lost.
    #[event(type = "bus.subscriber_lagged", domain = Bus, base = event)]
    pub struct SubscriberLaggedEvent {
        /// The name the subscriber was registered under.
        pub subscriber: String,
        /// Deliveries dropped in this episode when the event was published.
        pub dropped: u64,
        /// Deliveries the subscriber has lost since it subscribed.
        pub total_dropped: u64,
        /// The subscriber's queue capacity.
        pub capacity: u64,
    }
}
