//! The provider flags shared by `agentbus chat` and `agentbus run`: which server, which
//! protocol, which model, where the key is.
//!
//! Adding a provider: a variant of [`Provider`] and an arm in [`ProviderArgs::build`].

use std::path::PathBuf;
use std::sync::Arc;

use agentbus_llm::{ApiKey, ChatModel, HttpConfig, HttpModel, PricingTable};
use anyhow::Context;

/// The provider flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ProviderArgs {
    /// The provider: `local` (the default) runs the embedded SmolLM2-135M-Instruct on this
    /// machine, pulling it (~98 MB, once) on first use.
    #[arg(long, value_enum, default_value_t = Provider::Local, env = "AGENTBUS_PROVIDER")]
    pub provider: Provider,
    /// The API root (default: the provider's public endpoint). Any OpenAI-compatible server
    /// works with `--provider openai` (vLLM, llama.cpp, Ollama, OpenRouter, DeepSeek, Groq).
    #[arg(long, value_name = "URL", env = "AGENTBUS_BASE_URL")]
    pub base_url: Option<String>,
    /// The model name (default: `smollm2-135m-instruct` for local, `gpt-4o-mini` for
    /// OpenAI, `claude-3-5-haiku-latest` for Anthropic).
    #[arg(long, value_name = "NAME", env = "AGENTBUS_MODEL")]
    pub model: Option<String>,
    /// The environment variable holding the API key (default: `OPENAI_API_KEY` or
    /// `ANTHROPIC_API_KEY`). The key is never printed, logged or put in an event; a
    /// missing key sends no authentication (local servers).
    #[arg(long, value_name = "VAR", env = "AGENTBUS_API_KEY_ENV")]
    pub api_key_env: Option<String>,
    /// The OpenAI API to use: Chat Completions (default) or Responses.
    #[arg(long, value_enum, default_value_t = OpenAiApi::Chat)]
    pub api: OpenAiApi,
    /// A pricing file (JSON or TOML: model → {input, output, cached_input}, USD per
    /// million tokens) overriding the built-in table.
    #[arg(long, value_name = "FILE")]
    pub pricing: Option<PathBuf>,
}

/// The providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// The embedded local model (no server, no key; see `agentbus model`).
    Local,
    /// OpenAI, or any server that copies its API.
    Openai,
    /// Anthropic Messages.
    Anthropic,
}

/// Which OpenAI API `--provider openai` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OpenAiApi {
    /// `POST /chat/completions`.
    Chat,
    /// `POST /responses`.
    Responses,
}

impl ProviderArgs {
    /// The model these flags describe.
    pub fn build(&self) -> anyhow::Result<Arc<dyn ChatModel>> {
        let mut pricing = PricingTable::builtin();
        if let Some(path) = &self.pricing {
            pricing.load_overrides(path)?;
        }
        let (name, default_url, default_model, default_key) = match self.provider {
            Provider::Local => return self.build_local(),
            Provider::Openai => (
                "openai",
                "https://api.openai.com/v1",
                "gpt-4o-mini",
                "OPENAI_API_KEY",
            ),
            Provider::Anthropic => (
                "anthropic",
                "https://api.anthropic.com/v1",
                "claude-3-5-haiku-latest",
                "ANTHROPIC_API_KEY",
            ),
        };
        let key_var = self.api_key_env.as_deref().unwrap_or(default_key);
        let mut config = HttpConfig::new(
            name,
            self.base_url.as_deref().unwrap_or(default_url),
            self.model.as_deref().unwrap_or(default_model),
        )
        .with_api_key(ApiKey::from_env(key_var));
        config.pricing = Some(Arc::new(pricing));
        let model = match (self.provider, self.api) {
            (Provider::Openai, OpenAiApi::Chat) => HttpModel::openai_chat(config),
            (Provider::Openai, OpenAiApi::Responses) => HttpModel::openai_responses(config),
            (Provider::Anthropic, OpenAiApi::Chat) => HttpModel::anthropic(config),
            (Provider::Local, _) => return self.build_local(),
            (Provider::Anthropic, OpenAiApi::Responses) => {
                anyhow::bail!("--api responses is an OpenAI API; use it with --provider openai")
            }
        }
        .context("configuring the provider")?;
        Ok(Arc::new(model))
    }

    /// The embedded model, pulled on first use.
    fn build_local(&self) -> anyhow::Result<Arc<dyn ChatModel>> {
        if let Some(model) = self.model.as_deref()
            && agentbus_local::spec::find(model).is_none()
        {
            anyhow::bail!(
                "--provider local runs {}; `{model}` is not a local model",
                agentbus_local::DEFAULT_MODEL.name
            );
        }
        Ok(Arc::new(super::model::load_local()?))
    }
}
