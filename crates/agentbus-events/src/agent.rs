//! agent events (being written).
