//! agentbus-agent (being written).
