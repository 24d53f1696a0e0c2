//! edge events (being written).
