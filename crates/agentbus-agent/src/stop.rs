//! Why and when a run stops early: the caller's cancellation and the agent's interrupt.

use agentbus_events::ErrorInfo;
use agentbus_events::react::AbortReason;
use tokio_util::sync::CancellationToken;

/// Why the run is stopping early, as seen at an await point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Cancelled,
    Interrupted,
}

impl Stop {
    /// The abort reason `ReactEndEvent` reports.
    pub(crate) fn reason(self) -> AbortReason {
        match self {
            Stop::Cancelled => AbortReason::Cancelled,
            Stop::Interrupted => AbortReason::Interrupted,
        }
    }

    /// The error the closing events carry.
    pub(crate) fn error(self) -> ErrorInfo {
        match self {
            Stop::Cancelled => ErrorInfo::new("cancelled", "the run was cancelled"),
            Stop::Interrupted => ErrorInfo::new("interrupted", "the agent was interrupted"),
        }
    }
}

/// The two tokens that stop a run: the caller's cancellation and the agent's interrupt.
#[derive(Clone, Debug)]
pub(crate) struct StopTokens {
    pub(crate) cancel: CancellationToken,
    pub(crate) interrupt: CancellationToken,
}

impl StopTokens {
    /// Whether (and why) the run must stop now.
    ///
    /// The interrupt token is a child of the cancellation token, so a cancellation also
    /// fires it: one look at the interrupt token answers "go on" (each look takes the
    /// token's lock, and the loop looks between every two model events); only a fired
    /// interrupt token needs the second look, which tells a cancellation from an
    /// interruption.
    pub(crate) fn check(&self) -> Option<Stop> {
        if !self.interrupt.is_cancelled() {
            None
        } else if self.cancel.is_cancelled() {
            Some(Stop::Cancelled)
        } else {
            Some(Stop::Interrupted)
        }
    }

    /// Resolves when either token fires, with the reason.
    pub(crate) async fn stopped(&self) -> Stop {
        self.interrupt.cancelled().await;
        self.check().unwrap_or(Stop::Interrupted)
    }

    /// A token cancelled when either fires: what tools watch.
    pub(crate) fn combined(&self) -> CancellationToken {
        // The interrupt token is a child of the cancellation token (see `run`).
        self.interrupt.clone()
    }
}
