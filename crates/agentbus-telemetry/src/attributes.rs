//! Precomputed attribute sets: the collector builds each distinct set of metric attributes
//! once (on the first event that needs it) and reuses it for every later event with the
//! same provider, model, tool, ... so recording allocates nothing in the steady state.
//! The same cache ([`SetCache`]) keeps instruments bound to a set, for the hottest path
//! (see `collector/llm.rs`), which then records without looking its attributes up.

use opentelemetry::KeyValue;

/// Which attribute set of an event is meant (one event may need several).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each names the instrument family the set belongs to
pub enum Set {
    LlmVa,
    LlmErrorVa,
    LlmChatError,
    ToolVa,
    ToolGenAi,
    Stt,
    SttError,
    Tts,
    TtsError,
    Turn,
    Vlm,
    VlmChat,
    VlmTokensInput,
    VlmTokensOutput,
    VlmError,
    Video,
    Realtime,
    RealtimeDisconnect,
    RealtimeError,
}

/// The most entries kept; beyond this many distinct sets (a model name per request, say)
/// sets are built for each event and not kept, so memory stays bounded.
pub const MAX_ENTRIES: usize = 4096;

/// The key of a set: up to four strings (provider, model, tool, error kind, ...).
pub type Key<'a> = [Option<&'a str>; 4];

struct Entry<V> {
    hash: u64,
    set: Set,
    key: [Option<Box<str>>; 4],
    value: V,
}

/// Values built once per attribute set and key: the sets themselves
/// ([`AttributeCache`]), or instruments bound to them.
pub struct SetCache<V> {
    entries: Vec<Entry<V>>,
    /// Holds a value built for one event when the cache is full.
    overflow: Option<V>,
}

/// The cache of attribute sets.
pub type AttributeCache = SetCache<Vec<KeyValue>>;

impl<V> Default for SetCache<V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            overflow: None,
        }
    }
}

impl<V> std::fmt::Debug for SetCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetCache")
            .field("entries", &self.entries.len())
            .finish()
    }
}

fn fnv1a(set: Set, key: &Key<'_>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ set as u64;
    for part in key {
        // A separator byte per part keeps ("ab", None) and ("a", "b") apart.
        let bytes = part.map(str::as_bytes);
        for byte in bytes.unwrap_or(&[]).iter().chain(std::iter::once(&0xff)) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        if bytes.is_none() {
            hash ^= 0xfe;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

impl<V> SetCache<V> {
    /// The value for `set` and `key`, built by `build` the first time.
    pub fn get(&mut self, set: Set, key: Key<'_>, build: impl FnOnce() -> V) -> &V {
        let hash = fnv1a(set, &key);
        let found = self.entries.iter().position(|e| {
            e.hash == hash
                && e.set == set
                && e.key
                    .iter()
                    .zip(key.iter())
                    .all(|(a, b)| a.as_deref() == *b)
        });
        if let Some(index) = found {
            return &self.entries[index].value;
        }
        if self.entries.len() >= MAX_ENTRIES {
            return self.overflow.insert(build());
        }
        self.entries.push(Entry {
            hash,
            set,
            key: key.map(|k| k.map(Box::from)),
            value: build(),
        });
        // Just pushed: the vector is not empty.
        &self.entries[self.entries.len() - 1].value
    }

    /// Number of cached sets.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no set is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Builds a list of attributes, leaving out the absent ones.
#[derive(Default)]
pub struct Builder(Vec<KeyValue>);

impl Builder {
    /// An empty list.
    pub fn new() -> Self {
        Self(Vec::with_capacity(6))
    }

    /// Adds `key = value`.
    pub fn with(mut self, key: &'static str, value: &str) -> Self {
        self.0.push(KeyValue::new(key, value.to_owned()));
        self
    }

    /// Adds `key = value` when the value is present.
    pub fn with_opt(self, key: &'static str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.with(key, value),
            None => self,
        }
    }

    /// The list.
    pub fn build(self) -> Vec<KeyValue> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_once_per_distinct_key() {
        let mut cache = AttributeCache::default();
        let mut built = 0;
        for _ in 0..3 {
            let attrs = cache.get(
                Set::LlmVa,
                [Some("openai"), Some("gpt"), None, None],
                || {
                    built += 1;
                    Builder::new().with("provider", "openai").build()
                },
            );
            assert_eq!(attrs.len(), 1);
        }
        cache.get(Set::LlmVa, [Some("openai"), None, None, None], || {
            built += 1;
            Vec::new()
        });
        cache.get(
            Set::ToolVa,
            [Some("openai"), Some("gpt"), None, None],
            || {
                built += 1;
                Vec::new()
            },
        );
        cache.get(
            Set::LlmVa,
            [Some("open"), Some("aigpt"), None, None],
            || {
                built += 1;
                Vec::new()
            },
        );
        assert_eq!(built, 4);
        assert_eq!(cache.len(), 4);
    }
}
