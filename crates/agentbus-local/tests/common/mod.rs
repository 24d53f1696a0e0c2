//! What the embedded model's suites share.

use agentbus_local::pull::{ModelStatus, status};
use agentbus_local::{DEFAULT_MODEL, ModelDir};

/// Whether the model is pulled and intact: when it is not, a test skips with a note, or
/// fails with `AGENTBUS_REQUIRE_SERVICES=1` (CI pulls it and sets that).
#[track_caller]
pub fn model_pulled() -> bool {
    let probe = ModelDir::from_env()
        .map_err(|e| e.to_string())
        .and_then(|dir| match status(&dir, DEFAULT_MODEL) {
            Ok(ModelStatus::Ready) => Ok(()),
            Ok(ModelStatus::Missing) => Err(format!("{} is not pulled", DEFAULT_MODEL.name)),
            Ok(ModelStatus::Corrupted { reason }) => {
                Err(format!("{} is damaged: {reason}", DEFAULT_MODEL.name))
            }
            Err(error) => Err(error.to_string()),
        });
    agentbus_test_support::services::available(
        "the embedded model",
        probe,
        "run `agentbus model pull`",
    )
}
