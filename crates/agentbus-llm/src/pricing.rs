//! The pricing table: USD per million tokens, per model, and the cost of one call.
//!
//! [`PricingTable::builtin`] covers the common OpenAI, Anthropic, DeepSeek, Gemini and
//! Mistral models (list prices, standard tier, short-context rates). A file (JSON or
//! TOML) can add or override entries: [`PricingTable::load_overrides`]. A model that is
//! not in the table has no cost: [`PricingTable::cost`] returns `None`, never `0.0`.
//!
//! Lookup: the model name is lowercased and stripped of a gateway prefix
//! (`openai/gpt-4o` → `gpt-4o`); an exact entry wins, otherwise the longest entry that is
//! a prefix of the name followed by `-`, `:`, `@` or `.` (so `gpt-4o-2024-08-06` uses
//! `gpt-4o`, and `gpt-4o-mini` uses its own entry, not `gpt-4o`'s).

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Prices of one model, in USD per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// Uncached input (prompt) tokens.
    pub input: f64,
    /// Output tokens (reasoning included).
    pub output: f64,
    /// Input tokens read from the prompt cache; `None` bills them as `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// Input tokens written to the prompt cache (Anthropic); `None` bills them as `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
}

/// How a provider counts cached tokens in its input count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputCounting {
    /// `input_tokens` includes cached tokens (OpenAI, DeepSeek, Gemini, Mistral, the
    /// OpenAI-compatible servers).
    IncludesCached,
    /// `input_tokens` excludes cache reads and cache writes (Anthropic).
    ExcludesCached,
}

/// Token counts of one call, as the provider reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// Input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Cache reads.
    pub cached: u64,
    /// Cache writes.
    pub cache_creation: u64,
}

/// Loading a pricing file failed.
#[derive(Debug, Error)]
pub enum PricingError {
    /// The file could not be read.
    #[error("cannot read pricing file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid table.
    #[error("invalid pricing file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Model name → [`ModelPrice`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PricingTable {
    prices: HashMap<String, ModelPrice>,
}

/// One built-in row: (model, input, output, cached input, cache write), USD per million
/// tokens.
type PriceRow = (&'static str, f64, f64, Option<f64>, Option<f64>);

const BUILTIN: &[PriceRow] = &[
    // OpenAI
    ("gpt-5", 1.25, 10.0, Some(0.125), None),
    ("gpt-5-mini", 0.25, 2.0, Some(0.025), None),
    ("gpt-5-nano", 0.05, 0.40, Some(0.005), None),
    ("gpt-4.1", 2.0, 8.0, Some(0.50), None),
    ("gpt-4.1-mini", 0.40, 1.60, Some(0.10), None),
    ("gpt-4.1-nano", 0.10, 0.40, Some(0.025), None),
    ("gpt-4o", 2.50, 10.0, Some(1.25), None),
    ("gpt-4o-mini", 0.15, 0.60, Some(0.075), None),
    ("gpt-4-turbo", 10.0, 30.0, None, None),
    ("gpt-4", 30.0, 60.0, None, None),
    ("gpt-3.5-turbo", 0.50, 1.50, None, None),
    ("o1", 15.0, 60.0, Some(7.50), None),
    ("o1-mini", 1.10, 4.40, Some(0.55), None),
    ("o3", 2.0, 8.0, Some(0.50), None),
    ("o3-mini", 1.10, 4.40, Some(0.55), None),
    ("o4-mini", 1.10, 4.40, Some(0.275), None),
    // Anthropic (cache reads 0.1x input, 5-minute cache writes 1.25x input)
    ("claude-opus-4", 15.0, 75.0, Some(1.50), Some(18.75)),
    ("claude-opus-4-1", 15.0, 75.0, Some(1.50), Some(18.75)),
    ("claude-opus-4-5", 5.0, 25.0, Some(0.50), Some(6.25)),
    ("claude-sonnet-4", 3.0, 15.0, Some(0.30), Some(3.75)),
    ("claude-3-7-sonnet", 3.0, 15.0, Some(0.30), Some(3.75)),
    ("claude-3-5-sonnet", 3.0, 15.0, Some(0.30), Some(3.75)),
    ("claude-haiku-4-5", 1.0, 5.0, Some(0.10), Some(1.25)),
    ("claude-3-5-haiku", 0.80, 4.0, Some(0.08), Some(1.0)),
    ("claude-3-haiku", 0.25, 1.25, Some(0.03), Some(0.30)),
    ("claude-3-opus", 15.0, 75.0, Some(1.50), Some(18.75)),
    // DeepSeek
    ("deepseek-chat", 0.28, 0.42, Some(0.028), None),
    ("deepseek-reasoner", 0.28, 0.42, Some(0.028), None),
    // Google Gemini (prompts up to 200k tokens)
    ("gemini-2.5-pro", 1.25, 10.0, Some(0.31), None),
    ("gemini-2.5-flash", 0.30, 2.50, Some(0.075), None),
    ("gemini-2.5-flash-lite", 0.10, 0.40, Some(0.025), None),
    ("gemini-2.0-flash", 0.10, 0.40, Some(0.025), None),
    ("gemini-2.0-flash-lite", 0.075, 0.30, None, None),
    ("gemini-1.5-pro", 1.25, 5.0, None, None),
    ("gemini-1.5-flash", 0.075, 0.30, None, None),
    // Mistral
    ("mistral-large", 2.0, 6.0, None, None),
    ("mistral-medium", 0.40, 2.0, None, None),
    ("mistral-small", 0.10, 0.30, None, None),
    ("magistral-medium", 2.0, 5.0, None, None),
    ("magistral-small", 0.50, 1.50, None, None),
    ("codestral", 0.30, 0.90, None, None),
    ("ministral-8b", 0.10, 0.10, None, None),
    ("ministral-3b", 0.04, 0.04, None, None),
    ("open-mistral-nemo", 0.15, 0.15, None, None),
];

impl PricingTable {
    /// An empty table: every cost is unknown.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in table.
    pub fn builtin() -> Self {
        let prices = BUILTIN
            .iter()
            .map(|&(model, input, output, cached_input, cache_write)| {
                (
                    model.to_owned(),
                    ModelPrice {
                        input,
                        output,
                        cached_input,
                        cache_write,
                    },
                )
            })
            .collect();
        Self { prices }
    }

    /// Adds or replaces the price of `model`.
    pub fn insert(&mut self, model: impl Into<String>, price: ModelPrice) {
        self.prices.insert(model.into().to_ascii_lowercase(), price);
    }

    /// Adds or replaces entries from a file: a map from model name to
    /// `{input, output, cached_input?, cache_write?}`, in JSON (`.json`) or TOML
    /// (any other extension).
    pub fn load_overrides(&mut self, path: &Path) -> Result<(), PricingError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PricingError::Read {
            path: display.clone(),
            source,
        })?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let entries: HashMap<String, ModelPrice> = if is_json {
            serde_json::from_str(&text).map_err(|e| PricingError::Parse {
                path: display.clone(),
                message: e.to_string(),
            })?
        } else {
            toml::from_str(&text).map_err(|e| PricingError::Parse {
                path: display.clone(),
                message: e.to_string(),
            })?
        };
        for (model, price) in entries {
            self.insert(model, price);
        }
        Ok(())
    }

    /// The price of `model`, when known (see the module documentation for the lookup).
    pub fn price(&self, model: &str) -> Option<ModelPrice> {
        let name = model.to_ascii_lowercase();
        let name = name.rsplit('/').next().unwrap_or(&name);
        if let Some(price) = self.prices.get(name) {
            return Some(*price);
        }
        self.prices
            .iter()
            .filter(|(key, _)| {
                name.len() > key.len()
                    && name.starts_with(key.as_str())
                    && matches!(name.as_bytes()[key.len()], b'-' | b':' | b'@' | b'.')
            })
            .max_by_key(|(key, _)| key.len())
            .map(|(_, price)| *price)
    }

    /// The cost of a call in USD, or `None` when the model is unknown.
    pub fn cost(&self, model: &str, tokens: TokenCounts, counting: InputCounting) -> Option<f64> {
        let price = self.price(model)?;
        let cached_price = price.cached_input.unwrap_or(price.input);
        let write_price = price.cache_write.unwrap_or(price.input);
        let uncached_input = match counting {
            InputCounting::IncludesCached => tokens
                .input
                .saturating_sub(tokens.cached)
                .saturating_sub(tokens.cache_creation),
            InputCounting::ExcludesCached => tokens.input,
        };
        let micro = uncached_input as f64 * price.input
            + tokens.cached as f64 * cached_price
            + tokens.cache_creation as f64 * write_price
            + tokens.output as f64 * price.output;
        Some(micro / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_and_gateway_prefix() {
        let table = PricingTable::builtin();
        assert_eq!(
            table.price("gpt-4o-mini-2024-07-18").map(|p| p.input),
            Some(0.15)
        );
        assert_eq!(
            table.price("gpt-4o-2024-08-06").map(|p| p.input),
            Some(2.50)
        );
        assert_eq!(
            table.price("openai/gpt-4.1-mini").map(|p| p.input),
            Some(0.40)
        );
        assert_eq!(
            table.price("claude-sonnet-4-5-20250929").map(|p| p.output),
            Some(15.0)
        );
        assert_eq!(table.price("gpt-4o2"), None);
        assert_eq!(table.price("my-local-model"), None);
    }

    #[test]
    fn cost_is_absent_for_unknown_models() {
        let table = PricingTable::builtin();
        let tokens = TokenCounts {
            input: 1000,
            output: 1000,
            ..TokenCounts::default()
        };
        assert_eq!(
            table.cost("qwen3-8b", tokens, InputCounting::IncludesCached),
            None
        );
        let cost = table
            .cost("gpt-4o-mini", tokens, InputCounting::IncludesCached)
            .unwrap();
        assert!((cost - 0.00075).abs() < 1e-12, "{cost}");
    }

    #[test]
    fn cached_tokens_are_billed_by_convention() {
        let table = PricingTable::builtin();
        let tokens = TokenCounts {
            input: 1_000_000,
            output: 0,
            cached: 500_000,
            cache_creation: 0,
        };
        let openai = table
            .cost("gpt-4o", tokens, InputCounting::IncludesCached)
            .unwrap();
        assert!((openai - (1.25 + 0.625)).abs() < 1e-9, "{openai}");
        let anthropic = table
            .cost("claude-sonnet-4", tokens, InputCounting::ExcludesCached)
            .unwrap();
        assert!((anthropic - (3.0 + 0.15)).abs() < 1e-9, "{anthropic}");
    }

    #[test]
    fn overrides_from_json_and_toml() {
        let dir = std::env::temp_dir().join(format!("agentbus-pricing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("p.json");
        std::fs::write(
            &json,
            r#"{"my-model": {"input": 1.0, "output": 2.0, "cached_input": 0.5}}"#,
        )
        .unwrap();
        let toml_path = dir.join("p.toml");
        std::fs::write(&toml_path, "[\"gpt-4o\"]\ninput = 9.0\noutput = 9.0\n").unwrap();
        let mut table = PricingTable::builtin();
        table.load_overrides(&json).unwrap();
        table.load_overrides(&toml_path).unwrap();
        assert_eq!(table.price("my-model").unwrap().cached_input, Some(0.5));
        assert_eq!(table.price("gpt-4o").unwrap().input, 9.0);
        std::fs::write(&json, "{not json").unwrap();
        assert!(matches!(
            table.load_overrides(&json),
            Err(PricingError::Parse { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
