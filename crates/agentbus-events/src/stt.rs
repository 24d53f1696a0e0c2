//! stt events (being written).
