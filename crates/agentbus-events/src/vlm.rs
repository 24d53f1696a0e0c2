//! vlm events (being written).
