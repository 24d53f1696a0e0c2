//! bus events (being written).
