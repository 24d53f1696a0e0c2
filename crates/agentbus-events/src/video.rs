//! video events (being written).
