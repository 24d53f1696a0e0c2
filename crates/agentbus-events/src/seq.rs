//! [`Seq`]: the position a bus gave an event.

use std::fmt;
use std::num::NonZeroU64;

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The position in the order a bus accepted events: 1 for the first, increasing by one
/// per accepted event.
///
/// A newtype over [`NonZeroU64`], so "no seq" is `Option<Seq>::None` (the same size as a
/// `u64`) rather than a magic 0. On the wire it is the plain number (`"seq": 42`).
///
/// ```
/// use agentbus_events::Seq;
///
/// let seq = Seq::new(42).unwrap();
/// assert_eq!(seq.get(), 42);
/// assert_eq!(seq.to_string(), "42");
/// assert_eq!(serde_json::to_string(&seq).unwrap(), "42");
/// assert!(Seq::new(0).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(transparent)]
pub struct Seq(NonZeroU64);

impl Seq {
    /// The first seq a bus gives.
    pub const FIRST: Seq = Seq(NonZeroU64::MIN);

    /// The seq `n`, or `None` for 0.
    pub const fn new(n: u64) -> Option<Seq> {
        match NonZeroU64::new(n) {
            Some(n) => Some(Seq(n)),
            None => None,
        }
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// The seq after this one, or `None` past `u64::MAX`.
    pub const fn next(self) -> Option<Seq> {
        match self.0.checked_add(1) {
            Some(n) => Some(Seq(n)),
            None => None,
        }
    }
}

impl From<NonZeroU64> for Seq {
    fn from(n: NonZeroU64) -> Self {
        Seq(n)
    }
}

impl From<Seq> for u64 {
    fn from(seq: Seq) -> u64 {
        seq.get()
    }
}

impl From<Seq> for NonZeroU64 {
    fn from(seq: Seq) -> NonZeroU64 {
        seq.0
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_the_plain_number() {
        let seq = Seq::new(7).unwrap();
        assert_eq!(serde_json::to_value(seq).unwrap(), serde_json::json!(7));
        assert_eq!(serde_json::from_str::<Seq>("7").unwrap(), seq);
        assert!(serde_json::from_str::<Seq>("0").is_err());
        assert_eq!(std::mem::size_of::<Option<Seq>>(), 8);
    }
}
