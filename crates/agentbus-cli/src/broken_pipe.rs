//! A reader that went away (`agentbus run … | head`) is not an error.
//!
//! Rust ignores `SIGPIPE`, so a write to a closed pipe fails with `EPIPE` instead of
//! killing the process. The commands stop their output when that happens (`run` and
//! `chat` cancel the work, still flushing the store), and `main` turns an error caused
//! by it into a quiet exit with status 0, like other command-line tools.

use std::io;

/// The text `std::io::Error` shows for `EPIPE`: errors that were turned into text on the
/// way up (a subscriber's error message) are recognised by it.
const EPIPE_TEXT: &str = "Broken pipe (os error 32)";

/// Whether `error` is a write to a closed pipe.
pub fn is_broken_pipe_io(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::BrokenPipe
}

/// Whether `error` (or anything in its chain) is a write to a closed pipe.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return is_broken_pipe_io(io);
        }
        if let Some(json) = cause.downcast_ref::<serde_json::Error>() {
            return json.io_error_kind() == Some(io::ErrorKind::BrokenPipe);
        }
        cause.to_string().ends_with(EPIPE_TEXT)
    })
}

/// Makes a `println!` that hits a closed stdout end the process quietly with status 0
/// instead of a panic message and status 101 (for output written with `println!`).
pub fn exit_quietly_on_stdout_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.ends_with(EPIPE_TEXT) {
            std::process::exit(0);
        }
        default(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn recognises_epipe_through_context_json_and_text() {
        let epipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        let direct = anyhow::Error::from(epipe()).context("writing events");
        assert!(is_broken_pipe(&direct));
        struct ClosedPipe;
        impl io::Write for ClosedPipe {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let json = serde_json::to_writer(ClosedPipe, &serde_json::json!({"a": 1})).unwrap_err();
        assert!(is_broken_pipe(
            &anyhow::Error::from(json).context("writing")
        ));
        let raw = io::Error::from_raw_os_error(32);
        assert!(is_broken_pipe(&anyhow::anyhow!("writing: {raw}")));
        let other: anyhow::Result<()> =
            Err(io::Error::from(io::ErrorKind::PermissionDenied)).context("writing");
        assert!(!is_broken_pipe(&other.unwrap_err()));
    }
}
