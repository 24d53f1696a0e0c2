//! realtime events (being written).
