//! Example values: one valid instance of every type, used by `agentbus events list --json`,
//! the round-trip tests and the schema tests.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

/// A type that can produce a sample instance of itself.
///
/// `example()` fills every field, optional ones included; `minimal()` leaves every
/// optional field empty. Both must be valid values of the type.
pub trait Example: Sized {
    /// An instance with every field, optional or not, filled.
    fn example() -> Self;
    /// An instance with only the required fields filled.
    fn minimal() -> Self {
        Self::example()
    }
}

impl Example for String {
    fn example() -> Self {
        "example".to_owned()
    }
}

impl<T: Example> Example for Option<T> {
    fn example() -> Self {
        Some(T::example())
    }
    fn minimal() -> Self {
        None
    }
}

impl<T: Example> Example for Vec<T> {
    fn example() -> Self {
        vec![T::example()]
    }
    fn minimal() -> Self {
        Vec::new()
    }
}

impl<V: Example> Example for BTreeMap<String, V> {
    fn example() -> Self {
        BTreeMap::from([("key".to_owned(), V::example())])
    }
    fn minimal() -> Self {
        BTreeMap::new()
    }
}

impl<T: Example> Example for Box<T> {
    fn example() -> Self {
        Box::new(T::example())
    }
    fn minimal() -> Self {
        Box::new(T::minimal())
    }
}

impl Example for bool {
    fn example() -> Self {
        true
    }
}

macro_rules! example_number {
    ($($t:ty = $v:expr),* $(,)?) => {
        $(impl Example for $t {
            fn example() -> Self {
                $v
            }
        })*
    };
}

example_number!(
    u8 = 1,
    u16 = 2,
    u32 = 3,
    u64 = 7,
    usize = 5,
    i32 = -3,
    i64 = -7,
    f32 = 0.5,
    f64 = 12.5
);

impl Example for serde_json::Value {
    fn example() -> Self {
        serde_json::json!({"key": "value"})
    }
}

impl Example for Uuid {
    fn example() -> Self {
        Uuid::from_u128(0x0193_0000_0000_4000_8000_0000_0000_0001)
    }
}

impl Example for DateTime<Utc> {
    fn example() -> Self {
        // 2026-01-02T03:04:05.678Z: a fixed, valid instant with sub-second precision.
        Utc.timestamp_millis_opt(1_767_323_045_678)
            .single()
            .unwrap_or_default()
    }
}
