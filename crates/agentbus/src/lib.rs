//! agentbus (being written).
