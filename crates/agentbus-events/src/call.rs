//! call events (being written).
