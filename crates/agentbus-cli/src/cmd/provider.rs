//! The provider flags shared by `agentbus chat` and `agentbus run`: which server, which
//! protocol, which model, where the key is.
//!
//! Adding a provider: a variant of [`Provider`] and an arm in [`ProviderArgs::build`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentbus_llm::{
    ApiKey, ChatModel, HttpConfig, HttpModel, PricingTable, StreamLimits, Timeouts,
};
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
    /// The longest an HTTP model call may take in all, retries and their waits included
    /// (`30m`, `90s`, `500ms`, or seconds). Keep-alive comments do not extend it.
    #[arg(long, value_name = "DURATION", env = "AGENTBUS_REQUEST_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// The longest an HTTP model call waits from sending a request to the first byte of
    /// the response body (headers included), per attempt.
    #[arg(long, value_name = "DURATION", env = "AGENTBUS_FIRST_BYTE_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub first_byte_timeout: Duration,
    /// The longest silence allowed between two chunks of a streaming response.
    #[arg(long, value_name = "DURATION", env = "AGENTBUS_IDLE_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// The largest server-sent event (and line) a response may contain (`16MiB`, `512KiB`,
    /// or bytes); past it the call fails without a retry.
    #[arg(long, value_name = "SIZE", env = "AGENTBUS_MAX_EVENT_BYTES", default_value = "16MiB", value_parser = parse_size)]
    pub max_event_bytes: usize,
    /// The most output (text, reasoning, tool calls) one response may accumulate; past it
    /// the call fails without a retry.
    #[arg(long, value_name = "SIZE", env = "AGENTBUS_MAX_RESPONSE_BYTES", default_value = "64MiB", value_parser = parse_size)]
    pub max_response_bytes: usize,
}

/// A duration: a number with `ms`, `s`, `m` or `h`, or a bare number of seconds (what a
/// number in `agentbus.toml` becomes). Written here because `humantime` rejects bare
/// numbers, and this is all the CLI needs.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_duration_or_zero(text)?
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            format!(
                "`{}` is not a positive duration a clock can hold",
                text.trim()
            )
        })
}

/// As [`parse_duration`], with zero allowed (`--metrics-linger 0`): `None` for a
/// duration no clock can hold.
pub fn parse_duration_or_zero(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 30m, 90s, 500ms, 120)"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => number,
        "ms" => number / 1000.0,
        "m" | "min" | "mins" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{text}` (ms, s, m, h)")),
    };
    Ok(Duration::try_from_secs_f64(seconds).ok())
}

/// A size in bytes: a number with `KiB`, `MiB` or `GiB` (`KB`/`MB`/`GB` accepted, also
/// binary), or a bare number of bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 16MiB, 512KiB, 1048576)"))?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (KiB, MiB, GiB)"
            ));
        }
    };
    number
        .checked_mul(scale)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is not a positive size this machine can address"))
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
        .with_api_key(ApiKey::from_env(key_var))
        .with_timeouts(Timeouts {
            first_byte: self.first_byte_timeout,
            idle: self.idle_timeout,
            total: self.request_timeout,
            ..Timeouts::default()
        })
        .with_limits(StreamLimits {
            max_line_bytes: self.max_event_bytes,
            max_event_bytes: self.max_event_bytes,
            max_response_bytes: self.max_response_bytes,
            ..StreamLimits::default()
        });
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
    #[cfg(feature = "local")]
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

    /// The embedded model is not compiled into this build.
    #[cfg(not(feature = "local"))]
    fn build_local(&self) -> anyhow::Result<Arc<dyn ChatModel>> {
        anyhow::bail!(
            "--provider local: this agentbus was built without the embedded model (Cargo \
             feature `local` of agentbus-cli); choose another --provider"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_and_bad_ones_are_clear_errors() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("120"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "0", "-5s", "1e999", "5 parsecs", "ms", "1e20h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512kb"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in [
            "",
            "0",
            "-1",
            "1.5MiB",
            "99999999999999999999GiB",
            "3 bananas",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
