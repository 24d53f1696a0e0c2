//! Runnable examples live beside this file; run one with
//! `cargo run -p agentbus-examples --example bus_basics`.
