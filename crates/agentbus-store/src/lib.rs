//! agentbus-store (being written).
