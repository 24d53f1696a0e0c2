//! turn events (being written).
