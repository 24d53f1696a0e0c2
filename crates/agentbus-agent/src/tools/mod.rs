//! Built-in tools: `calculator`, `current_time`, and `read_file`/`list_dir` confined to a
//! directory.

pub mod calculator;
pub mod files;
pub mod time;

use std::path::Path;
use std::sync::Arc;

use crate::tool::Tool;

pub use calculator::calculator;
pub use files::{Sandbox, is_sensitive, list_dir, read_file};
pub use time::current_time;

/// The four built-in tools, the file tools confined to `root` (see [`Sandbox::new`] for
/// the directories it refuses).
pub fn builtin_tools(root: impl AsRef<Path>) -> std::io::Result<Vec<Arc<dyn Tool>>> {
    Ok(builtin_tools_in(Sandbox::new(root)?))
}

/// The four built-in tools, the file tools confined to `sandbox` (with its extra denied
/// files).
pub fn builtin_tools_in(sandbox: Sandbox) -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(calculator()),
        Arc::new(current_time()),
        Arc::new(read_file(sandbox.clone())),
        Arc::new(list_dir(sandbox)),
    ]
}
