//! Tools: the [`Tool`] trait, [`ToolContext`] handed to a running tool, [`ToolError`], and
//! [`FunctionTool`], a tool made from an async function with typed arguments.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use agentbus_events::ErrorInfo;
use agentbus_events::react::EventOrigin;
use agentbus_llm::ToolDefinition;
use futures::FutureExt;
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::publish::Publisher;
use crate::tool_emitter::ToolEventEmitter;

/// What a tool call returns: a JSON value (a string is given to the model as is; anything
/// else as its JSON text), or why it failed.
pub type ToolResult = Result<serde_json::Value, ToolError>;

/// The future a [`Tool::call`] returns. It owns what it needs (`'static`) because the
/// loop runs each call on its own task.
pub type ToolFuture = BoxFuture<'static, ToolResult>;

/// Why a tool call failed. The loop turns every failure into data: a
/// `ToolCallErrorEvent`, `success: false` on the `ToolCallEndEvent`, and a tool message
/// telling the model what went wrong so it can correct itself.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The model called a tool that does not exist.
    #[error("unknown tool `{name}`; available tools: {available}")]
    UnknownTool {
        /// The name the model used.
        name: String,
        /// The tools it may call, comma-separated.
        available: String,
    },
    /// The arguments do not match the tool's schema (or are not JSON at all).
    #[error("invalid arguments for tool `{tool}`: {message}")]
    InvalidArguments {
        /// The tool.
        tool: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The tool ran and reported an error.
    #[error("{message}")]
    Failed {
        /// A short class of error (`io`, `math`, `not_found`, ...).
        kind: String,
        /// What went wrong.
        message: String,
    },
    /// The tool ran longer than its timeout and was stopped.
    #[error("tool `{tool}` timed out after {} ms", timeout.as_millis())]
    Timeout {
        /// The tool.
        tool: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The tool panicked.
    #[error("tool `{tool}` panicked: {message}")]
    Panicked {
        /// The tool.
        tool: String,
        /// The panic message.
        message: String,
    },
    /// The run was cancelled or interrupted while the tool ran.
    #[error("tool call cancelled")]
    Cancelled,
}

impl From<String> for ToolError {
    fn from(message: String) -> Self {
        ToolError::failed("error", message)
    }
}

impl From<&str> for ToolError {
    fn from(message: &str) -> Self {
        ToolError::failed("error", message)
    }
}

impl From<std::io::Error> for ToolError {
    fn from(error: std::io::Error) -> Self {
        ToolError::failed("io", error.to_string())
    }
}

impl From<serde_json::Error> for ToolError {
    fn from(error: serde_json::Error) -> Self {
        ToolError::failed("json", error.to_string())
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for ToolError {
    fn from(error: Box<dyn std::error::Error + Send + Sync>) -> Self {
        ToolError::failed("error", error.to_string())
    }
}

impl From<std::convert::Infallible> for ToolError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl ToolError {
    /// A tool failure of `kind` with `message`.
    pub fn failed(kind: impl Into<String>, message: impl Into<String>) -> Self {
        ToolError::Failed {
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// The error's class, as used in `ErrorInfo::kind`.
    pub fn kind(&self) -> &str {
        match self {
            ToolError::UnknownTool { .. } => "unknown_tool",
            ToolError::InvalidArguments { .. } => "invalid_arguments",
            ToolError::Failed { kind, .. } => kind,
            ToolError::Timeout { .. } => "timeout",
            ToolError::Panicked { .. } => "panic",
            ToolError::Cancelled => "cancelled",
        }
    }

    /// The error as event data.
    pub fn to_error_info(&self) -> ErrorInfo {
        ErrorInfo::new(self.kind(), self.to_string())
    }
}

/// What a running tool can reach: who called it, a way to emit live events, the run's
/// cancellation, and (for sub-agents) the bus the calling agent publishes to.
#[derive(Clone, Debug)]
pub struct ToolContext {
    pub(crate) tool_name: String,
    pub(crate) tool_call_id: String,
    pub(crate) origin: EventOrigin,
    pub(crate) emitter: ToolEventEmitter,
    pub(crate) cancel: CancellationToken,
    pub(crate) publisher: Option<Publisher>,
    pub(crate) fork_counter: Arc<std::sync::atomic::AtomicU64>,
}

impl ToolContext {
    /// The tool's name, as the model called it.
    pub fn tool_name(&self) -> &str {
        &self.tool_name
    }

    /// The id of this tool call.
    pub fn tool_call_id(&self) -> &str {
        &self.tool_call_id
    }

    /// The origin of the calling agent call, with this tool's name and call id set.
    pub fn origin(&self) -> &EventOrigin {
        &self.origin
    }

    /// Emits live events into the calling agent's stream.
    pub fn emitter(&self) -> &ToolEventEmitter {
        &self.emitter
    }

    /// Cancelled when the run is cancelled or interrupted. The loop also stops the tool's
    /// task then; long-running tools may watch it to clean up.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The bus publisher of the calling agent, when it is attached to a bus.
    pub fn publisher(&self) -> Option<&Publisher> {
        self.publisher.as_ref()
    }

    /// The next fork sequence number of the calling agent call (0, 1, ...): the order in
    /// which its sub-agents started.
    pub fn next_fork_seq(&self) -> u64 {
        self.fork_counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// A tool the model may call.
///
/// Most tools are made with [`FunctionTool`] from an async function with typed
/// arguments; implement the trait directly for tools whose schema is dynamic.
pub trait Tool: Send + Sync + 'static {
    /// The name, description and JSON Schema of the arguments, as given to the model.
    fn definition(&self) -> &ToolDefinition;

    /// How long one call may run; `None` uses the agent's default tool timeout.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Runs the tool with the model's arguments (a JSON value, `null` when the model's
    /// text was not valid JSON). Validation is the tool's job: return
    /// [`ToolError::InvalidArguments`] with a message the model can act on.
    fn call(&self, arguments: serde_json::Value, context: ToolContext) -> ToolFuture;

    /// The tool's name.
    fn name(&self) -> &str {
        &self.definition().name
    }
}

/// The JSON Schema of `A`, shaped as tool parameters: an object schema with its
/// subschemas inlined and without `$schema`/`title` noise.
pub fn parameters_schema<A: JsonSchema>() -> serde_json::Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
    });
    let schema = settings.into_generator().into_root_schema_for::<A>();
    let mut value = schema.to_value();
    if let serde_json::Value::Object(object) = &mut value {
        object.remove("$schema");
        object.remove("title");
        if !object.contains_key("type") {
            object.insert("type".into(), serde_json::Value::String("object".into()));
        }
        if !object.contains_key("properties") {
            object.insert(
                "properties".into(),
                serde_json::Value::Object(serde_json::Map::new()),
            );
        }
    }
    value
}

/// Decodes a tool's arguments into `A`, with an error naming the offending field.
///
/// `null` arguments (the model's text was not JSON) are refused; a missing arguments
/// object is read as `{}`.
pub fn parse_arguments<A: DeserializeOwned>(
    tool: &str,
    arguments: serde_json::Value,
) -> Result<A, ToolError> {
    let arguments = match arguments {
        serde_json::Value::Null => {
            return Err(ToolError::InvalidArguments {
                tool: tool.to_owned(),
                message: "the arguments are not valid JSON; send a JSON object".into(),
            });
        }
        other => other,
    };
    serde_path_to_error::deserialize(arguments).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if path == "." || path.is_empty() {
            inner.to_string()
        } else {
            format!("field `{path}`: {inner}")
        };
        ToolError::InvalidArguments {
            tool: tool.to_owned(),
            message,
        }
    })
}

/// The function a [`FunctionTool`] wraps, type-erased.
type ErasedFn = dyn Fn(serde_json::Value, ToolContext) -> ToolFuture + Send + Sync;

/// A tool made from an async function with typed arguments.
///
/// The arguments type derives `serde::Deserialize` and `schemars::JsonSchema`; its schema
/// is generated and given to the model, and the model's arguments are validated against
/// it by decoding (a clear error naming the field goes back to the model on mismatch).
///
/// ```
/// use agentbus_agent::{FunctionTool, Tool};
/// use schemars::JsonSchema;
/// use serde::Deserialize;
///
/// #[derive(Deserialize, JsonSchema)]
/// struct AddArgs {
///     /// The first addend.
///     a: i64,
///     /// The second addend.
///     b: i64,
/// }
///
/// let add = FunctionTool::new("add", "Adds two integers.", |args: AddArgs| async move {
///     Ok::<_, std::convert::Infallible>(args.a + args.b)
/// });
/// assert_eq!(add.name(), "add");
/// assert_eq!(add.definition().parameters["required"], serde_json::json!(["a", "b"]));
/// ```
#[derive(Clone)]
pub struct FunctionTool {
    definition: ToolDefinition,
    timeout: Option<Duration>,
    function: Arc<ErasedFn>,
}

impl std::fmt::Debug for FunctionTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionTool")
            .field("definition", &self.definition)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl FunctionTool {
    /// A tool named `name` that runs `function` on the decoded arguments.
    ///
    /// `function` returns `Result<R, E>`: `R` is serialised to JSON for the model; `E`
    /// converts into the [`ToolError`] the model is told (a `String`, `&str`, I/O error,
    /// boxed error, or a `ToolError` itself).
    pub fn new<A, F, Fut, R, E>(
        name: impl Into<String>,
        description: impl Into<String>,
        function: F,
    ) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize,
        E: Into<ToolError>,
    {
        Self::with_context(name, description, move |args: A, _context| function(args))
    }

    /// Like [`new`](Self::new), for a function that also takes the [`ToolContext`] (to
    /// emit live events, watch cancellation, or start a sub-agent).
    pub fn with_context<A, F, Fut, R, E>(
        name: impl Into<String>,
        description: impl Into<String>,
        function: F,
    ) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A, ToolContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize,
        E: Into<ToolError>,
    {
        let name = name.into();
        let definition = ToolDefinition {
            name: name.clone(),
            description: description.into(),
            parameters: parameters_schema::<A>(),
        };
        let function = Arc::new(function);
        let erased = move |arguments: serde_json::Value, context: ToolContext| -> ToolFuture {
            let args = match parse_arguments::<A>(&name, arguments) {
                Ok(args) => args,
                Err(error) => return futures::future::ready(Err(error)).boxed(),
            };
            let future = function(args, context);
            async move {
                match future.await {
                    Ok(value) => serde_json::to_value(value).map_err(|e| {
                        ToolError::failed("serialization", format!("cannot encode result: {e}"))
                    }),
                    Err(error) => Err(error.into()),
                }
            }
            .boxed()
        };
        Self {
            definition,
            timeout: None,
            function: Arc::new(erased),
        }
    }

    /// The same tool with its own timeout per call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl Tool for FunctionTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    fn call(&self, arguments: serde_json::Value, context: ToolContext) -> ToolFuture {
        (self.function)(arguments, context)
    }
}

/// The text a tool result is given to the model as: a string as is, anything else as
/// compact JSON.
pub fn result_text(result: &serde_json::Value) -> String {
    match result {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
