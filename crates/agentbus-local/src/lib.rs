//! agentbus-local (being written).
