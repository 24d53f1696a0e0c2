//! Constants shared across the crate's modules (a leaf: it imports nothing).

/// The instrumentation scope name of every metric and span.
pub const SCOPE: &str = "agentbus";

/// The semantic conventions' `error.type` when a failure's class is not known.
pub const ERROR_TYPE_OTHER: &str = "_OTHER";

/// How many in-flight correlations (requests, sessions, failed tool calls) are kept; the
/// oldest is forgotten beyond this, so a producer that never closes what it opens cannot
/// grow the collector without bound.
pub const MAX_PENDING: usize = 10_000;
