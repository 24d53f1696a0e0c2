//! What a handler may return, and how failures (errors and panics) become data.

use std::any::Any;
use std::fmt::Display;

use agentbus_events::ErrorInfo;

/// The output of a handler's future: `()` (never fails) or `Result<(), E>` for any
/// displayable error (`anyhow::Error`, `String`, your own error type).
///
/// A returned error becomes an [`ExceptionEvent`](agentbus_events::base::ExceptionEvent)
/// whose `exc.kind` is the error's Rust type name and `exc.message` its `Display`.
pub trait HandlerOutcome: Send + 'static {
    /// `None` on success, the failure as data otherwise.
    fn into_failure(self) -> Option<ErrorInfo>;
}

impl HandlerOutcome for () {
    fn into_failure(self) -> Option<ErrorInfo> {
        None
    }
}

impl<E: Display + Send + 'static> HandlerOutcome for Result<(), E> {
    fn into_failure(self) -> Option<ErrorInfo> {
        match self {
            Ok(()) => None,
            Err(error) => Some(ErrorInfo::new(
                std::any::type_name::<E>(),
                error.to_string(),
            )),
        }
    }
}

/// The failure a panic payload describes: kind `panic`, message the panic message.
pub(crate) fn panic_failure(payload: &(dyn Any + Send)) -> ErrorInfo {
    let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    };
    ErrorInfo::new("panic", message)
}
