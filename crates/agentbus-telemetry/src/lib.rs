//! agentbus-telemetry (being written).
