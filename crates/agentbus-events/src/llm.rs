//! llm events (being written).
