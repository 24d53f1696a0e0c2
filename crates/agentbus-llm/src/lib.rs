//! agentbus-llm (being written).
