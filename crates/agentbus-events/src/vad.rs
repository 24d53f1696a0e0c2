//! vad events (being written).
