//! Whether a stored session is whole: the writers that wrote it and how they ended.
//!
//! Every [`StoreWriter`](crate::StoreWriter) records itself in the store when it starts
//! (`agentbus_writers`: its id, process id, host, start time, state `writing`) and every
//! append records, per session, which writer wrote it last (`agentbus_sessions`). When the
//! writer closes with everything written, its state becomes `closed`; when it gives up on a
//! batch it cannot write (a full disk, a server gone), `failed`, with the number of events
//! lost and the error. A writer that never got to record its end (killed, or the disk too
//! full even for that line) stays `writing`: readers on the same host see that its process
//! is gone and report the session as interrupted.

use serde::Serialize;

/// How complete a stored session is, as far as the store knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionStatus {
    /// Its writer closed with every accepted event written.
    Complete,
    /// Its writer is still open (a run in progress, or a process on another host).
    Writing {
        /// The writer's process id.
        writer_pid: u32,
        /// The writer's host.
        host: String,
    },
    /// Its writer's process is gone without having closed: killed, crashed, or stopped on
    /// a store it could no longer write. Events after the last stored one may be missing.
    Interrupted {
        /// The writer's process id.
        writer_pid: u32,
    },
    /// Its writer gave up: `lost` accepted events were not written, the session stops
    /// short of its end.
    Incomplete {
        /// Events accepted and not written (or refused after the failure).
        lost: u64,
        /// Why writing failed.
        error: String,
    },
    /// Written before this store recorded its writers (schema version 2 or older).
    Unknown,
}

impl SessionStatus {
    /// Whether the session may be missing events (interrupted or incomplete).
    pub fn has_gap(&self) -> bool {
        matches!(
            self,
            SessionStatus::Interrupted { .. } | SessionStatus::Incomplete { .. }
        )
    }

    /// A short word for tables: `complete`, `writing`, `INTERRUPTED`, `INCOMPLETE`, `unknown`.
    pub fn label(&self) -> &'static str {
        match self {
            SessionStatus::Complete => "complete",
            SessionStatus::Writing { .. } => "writing",
            SessionStatus::Interrupted { .. } => "INTERRUPTED",
            SessionStatus::Incomplete { .. } => "INCOMPLETE",
            SessionStatus::Unknown => "unknown",
        }
    }

    /// A sentence saying what may be missing, for a session whose last stored event has
    /// store seq `last_seq`; `None` when nothing is known to be missing.
    pub fn gap_warning(&self, session_id: &str, last_seq: u64) -> Option<String> {
        match self {
            SessionStatus::Incomplete { lost, error } => Some(format!(
                "session {session_id} is incomplete: its writer failed and gave up after store \
                 seq {last_seq}; {lost} event(s) were not written ({error})"
            )),
            SessionStatus::Interrupted { writer_pid } => Some(format!(
                "session {session_id} was interrupted: its writer (pid {writer_pid}) stopped \
                 without closing (killed, crashed or out of space); events after store seq \
                 {last_seq} may be missing"
            )),
            _ => None,
        }
    }
}

/// A writer's row as stored, before it is judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WriterRow {
    pub pid: i64,
    pub host: String,
    pub state: String,
    pub lost: i64,
    pub error: Option<String>,
}

pub(crate) const STATE_WRITING: &str = "writing";
pub(crate) const STATE_CLOSED: &str = "closed";
pub(crate) const STATE_FAILED: &str = "failed";

impl WriterRow {
    /// The status of a session this writer wrote last.
    pub(crate) fn status(&self) -> SessionStatus {
        let writer_pid = u32::try_from(self.pid).unwrap_or(0);
        match self.state.as_str() {
            STATE_CLOSED => SessionStatus::Complete,
            STATE_FAILED => SessionStatus::Incomplete {
                lost: self.lost.max(0) as u64,
                error: self.error.clone().unwrap_or_default(),
            },
            _ if self.host == this_host() && !process_alive(writer_pid) => {
                SessionStatus::Interrupted { writer_pid }
            }
            _ => SessionStatus::Writing {
                writer_pid,
                host: self.host.clone(),
            },
        }
    }
}

/// How a writer ended, for the store's record ([`Backend::end_writer`](crate::Backend::end_writer)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriterEnd {
    /// Everything accepted was written.
    Closed,
    /// It gave up; `lost` events were not written.
    Failed {
        /// Events accepted and not written.
        lost: u64,
        /// Why.
        error: String,
    },
}

impl WriterEnd {
    /// The state recorded for this end (`closed` or `failed`).
    pub fn state(&self) -> &'static str {
        match self {
            WriterEnd::Closed => STATE_CLOSED,
            WriterEnd::Failed { .. } => STATE_FAILED,
        }
    }
}

/// This machine's host name (empty when it cannot be read).
pub(crate) fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Whether a process with this id runs on this machine (true when that cannot be known).
fn process_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    if !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The processes other than this one that hold `path` open, as `pid NAME` strings
/// (Linux, from `/proc`; empty elsewhere or when none is found).
pub(crate) fn holders_of(path: &std::path::Path) -> Vec<String> {
    let Ok(target) = std::fs::canonicalize(path) else {
        return Vec::new();
    };
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in processes.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p == target));
        if holds {
            let name = std::fs::read_to_string(entry.path().join("comm"))
                .map(|c| c.trim().to_owned())
                .unwrap_or_default();
            found.push(format!("pid {pid} `{name}`"));
        }
    }
    found
}
