//! [`TextSnapshot`]: the text of a streamed response so far, shared instead of copied.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// All text of a response so far.
///
/// Every [`TextDelta`](crate::stream::TextDelta) carries one. Copying the whole text into
/// every delta made a long answer cost O(n²); a `TextSnapshot` is a length into one
/// append-only buffer that all snapshots of a response share, so producing the next one
/// and cloning one are O(1) plus the new text.
///
/// ```
/// use agentbus_events::stream::TextSnapshot;
///
/// let mut text = TextSnapshot::new();
/// let first = text.push("Hello");
/// let second = text.push(", world");
/// assert_eq!(first, "Hello");
/// assert_eq!(second.to_string(), "Hello, world");
/// ```
#[derive(Clone, Default)]
pub struct TextSnapshot {
    buffer: Arc<RwLock<String>>,
    len: usize,
}

impl TextSnapshot {
    /// An empty snapshot with a buffer of its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `text` and returns the snapshot that ends with it; `self` ends with it too.
    ///
    /// When another snapshot of the same buffer appended after this one was taken, the
    /// text is copied into a buffer of its own first, so every snapshot always reads
    /// exactly the text it was given.
    pub fn push(&mut self, text: &str) -> TextSnapshot {
        {
            let mut buffer = write(&self.buffer);
            if buffer.len() == self.len {
                buffer.push_str(text);
                self.len = buffer.len();
                return self.clone();
            }
        }
        let mut own = String::with_capacity(self.len + text.len());
        self.with_str(|s| own.push_str(s));
        own.push_str(text);
        *self = Self::from(own);
        self.clone()
    }

    /// Length of the text in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no text.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f` with the text.
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let buffer = self.buffer.read().unwrap_or_else(|e| e.into_inner());
        // Every `len` ever stored is the buffer's length after a whole `push_str`, so it
        // is a char boundary, and the buffer only grows.
        f(&buffer[..self.len])
    }
}

fn write(buffer: &RwLock<String>) -> std::sync::RwLockWriteGuard<'_, String> {
    buffer.write().unwrap_or_else(|e| e.into_inner())
}

impl From<String> for TextSnapshot {
    fn from(text: String) -> Self {
        Self {
            len: text.len(),
            buffer: Arc::new(RwLock::new(text)),
        }
    }
}

impl From<&str> for TextSnapshot {
    fn from(text: &str) -> Self {
        Self::from(text.to_owned())
    }
}

impl std::fmt::Display for TextSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with_str(|s| f.write_str(s))
    }
}

impl std::fmt::Debug for TextSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with_str(|s| std::fmt::Debug::fmt(s, f))
    }
}

impl PartialEq for TextSnapshot {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && other.with_str(|o| self == o)
    }
}

impl PartialEq<str> for TextSnapshot {
    fn eq(&self, other: &str) -> bool {
        self.with_str(|s| s == other)
    }
}

impl PartialEq<&str> for TextSnapshot {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl Serialize for TextSnapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_str(|s| serializer.serialize_str(s))
    }
}

impl<'de> Deserialize<'de> for TextSnapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for TextSnapshot {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <String as schemars::JsonSchema>::schema_name()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <String as schemars::JsonSchema>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_share_one_buffer_and_read_their_own_prefix() {
        let mut text = TextSnapshot::new();
        let a = text.push("héllo");
        let b = text.push(" wörld");
        assert!(Arc::ptr_eq(&a.buffer, &b.buffer));
        assert_eq!(a, "héllo");
        assert_eq!(b, "héllo wörld");
        assert_eq!(text, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), r#""héllo""#);
        let back: TextSnapshot = serde_json::from_str(r#""héllo wörld""#).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn pushing_onto_an_older_snapshot_copies_instead_of_corrupting() {
        let mut writer = TextSnapshot::new();
        let mut old = writer.push("ab");
        writer.push("cd");
        let forked = old.push("X");
        assert_eq!(forked, "abX");
        assert_eq!(writer, "abcd");
        assert!(!Arc::ptr_eq(&forked.buffer, &writer.buffer));
    }
}
