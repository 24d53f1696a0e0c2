//! The routing snapshot: which subscribers get an event of a given type.
//!
//! Rebuilt (rarely) on every subscribe, unsubscribe, registration or `silent` change and
//! published through an `ArcSwap`, so `send` does one lock-free load and one `TypeId`
//! lookup — no string keys, no locks.

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use agentbus_events::Registry;

use crate::subscriber::Subscriber;

/// A hasher for `TypeId`s, which are already well-distributed hashes: it keeps the
/// 64 bits `TypeId` writes instead of running SipHash over them.
#[derive(Default)]
pub(crate) struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `TypeId` writes integers; this path only runs if that changes. FNV-style fold.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= (n as u64) ^ ((n >> 64) as u64);
    }
}

type TypeIdMap<V> = HashMap<TypeId, V, BuildHasherDefault<TypeIdHasher>>;

/// Where events of one known type go.
pub(crate) struct Route {
    /// Typed and union subscribers of the type, then wildcard subscribers (minus those
    /// skipping silent types, when the type is silent), each in subscription order.
    pub subs: Box<[Arc<Subscriber>]>,
    /// Whether the type is registered on the bus.
    pub registered: bool,
    /// Whether the type is silent.
    pub silent: bool,
}

/// The routing table of one bus.
#[derive(Default)]
pub(crate) struct Routes {
    by_type: TypeIdMap<Route>,
    /// Wildcard subscribers, for types without a route.
    wildcard_all: Box<[Arc<Subscriber>]>,
    /// Wildcard subscribers that also want silent types.
    wildcard_loud: Box<[Arc<Subscriber>]>,
    /// Silent `type` strings (for types without a route).
    silent: HashSet<String>,
    /// Every subscriber, in subscription order.
    pub all: Box<[Arc<Subscriber>]>,
}

/// The subscribers of one event, and what the bus knows about its type.
pub(crate) struct Destination<'a> {
    pub subs: &'a [Arc<Subscriber>],
    pub registered: bool,
    pub silent: bool,
}

impl Routes {
    pub fn build(
        registry: &Registry,
        subscribers: &[Arc<Subscriber>],
        silent: &HashSet<String>,
    ) -> Self {
        let mut types: TypeIdMap<&'static str> = TypeIdMap::default();
        for info in registry.iter() {
            types.insert(info.type_id(), info.event_type);
        }
        for sub in subscribers {
            for &(type_id, event_type) in &sub.members {
                types.insert(type_id, event_type);
            }
        }
        let wildcards: Vec<&Arc<Subscriber>> =
            subscribers.iter().filter(|s| s.is_wildcard()).collect();
        let mut by_type = TypeIdMap::default();
        for (type_id, event_type) in types {
            let is_silent = silent.contains(event_type);
            let subs: Box<[Arc<Subscriber>]> = subscribers
                .iter()
                .filter(|s| s.members.iter().any(|&(t, _)| t == type_id))
                .chain(
                    wildcards
                        .iter()
                        .copied()
                        .filter(|s| !(is_silent && s.options.skip_silent)),
                )
                .cloned()
                .collect();
            let registered = registry
                .get(event_type)
                .is_some_and(|info| info.type_id() == type_id);
            by_type.insert(
                type_id,
                Route {
                    subs,
                    registered,
                    silent: is_silent,
                },
            );
        }
        Self {
            by_type,
            wildcard_all: wildcards.iter().map(|s| Arc::clone(s)).collect(),
            wildcard_loud: wildcards
                .iter()
                .filter(|s| !s.options.skip_silent)
                .map(|s| Arc::clone(s))
                .collect(),
            silent: silent.clone(),
            all: subscribers.iter().cloned().collect(),
        }
    }

    /// Where an event of this type goes.
    pub fn destination(&self, type_id: TypeId, event_type: &str) -> Destination<'_> {
        match self.by_type.get(&type_id) {
            Some(route) => Destination {
                subs: &route.subs,
                registered: route.registered,
                silent: route.silent,
            },
            None => {
                let silent = !self.silent.is_empty() && self.silent.contains(event_type);
                Destination {
                    subs: if silent {
                        &self.wildcard_loud
                    } else {
                        &self.wildcard_all
                    },
                    registered: false,
                    silent,
                }
            }
        }
    }
}
