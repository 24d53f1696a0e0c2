//! plugin events (being written).
