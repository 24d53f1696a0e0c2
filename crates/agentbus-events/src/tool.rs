//! tool events (being written).
