//! [`EventManagerBuilder`]: the settings of a new bus (its `build` is in `manager.rs`,
//! beside the type it builds).

use agentbus_events::Registry;
use agentbus_events::base::ExceptionEvent;
use agentbus_events::bus::SubscriberLaggedEvent;
use tokio::runtime::Handle;

use std::sync::Arc;

use crate::core::{Core, Node};
use crate::{BuildError, Registration, SubscribeOptions};

/// Builds an [`EventManager`](crate::EventManager) with non-default settings.
///
/// ```
/// use agentbus::{EventManager, SubscribeOptions};
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let bus = EventManager::builder()
///     .handle(runtime.handle().clone())
///     .strict()
///     .default_options(SubscribeOptions::new().capacity(64))
///     .build()
///     .unwrap();
/// assert!(!bus.is_shut_down());
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct EventManagerBuilder {
    handle: Option<Handle>,
    registration: Registration,
    defaults: SubscribeOptions,
    without_catalogue: bool,
}

impl EventManagerBuilder {
    /// The runtime consumer tasks are spawned on (default: the current runtime).
    pub fn handle(mut self, handle: Handle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// Strict or lenient handling of unregistered types (default lenient).
    pub fn registration(mut self, registration: Registration) -> Self {
        self.registration = registration;
        self
    }

    /// Shorthand for `registration(Registration::Strict)`.
    pub fn strict(self) -> Self {
        self.registration(Registration::Strict)
    }

    /// The options `subscribe` uses (default [`SubscribeOptions::default`]).
    pub fn default_options(mut self, options: SubscribeOptions) -> Self {
        self.defaults = options;
        self
    }

    /// Starts with an empty registry instead of the whole catalogue (the bus's own
    /// `base.exception` and `bus.subscriber_lagged` are always registered).
    pub fn without_catalogue(mut self) -> Self {
        self.without_catalogue = true;
        self
    }

    /// The bus's first node, with its core.
    pub(crate) fn build_node(self) -> Result<Arc<Node>, BuildError> {
        let handle = match self.handle {
            Some(handle) => handle,
            None => Handle::try_current().map_err(|_| BuildError::NoRuntime)?,
        };
        let mut registry = if self.without_catalogue {
            Registry::new()
        } else {
            Registry::catalogue()
        };
        registry.register::<ExceptionEvent>()?;
        registry.register::<SubscriberLaggedEvent>()?;
        let core = Core::new(handle, registry, self.registration, self.defaults);
        Ok(Node::new(core))
    }
}
