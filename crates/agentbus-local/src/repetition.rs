//! The repetition guard: what stops a small model's degenerate loops.
//!
//! Greedy decoding with a 135M-parameter model easily falls into a loop ("la femme au
//! martyre, la femme au martyre, …") and would run to the length limit. The guard does two
//! things, both on by default and both overridable ([`RepetitionGuard`]):
//!
//! - a **repetition penalty** (default 1.1 over the last 64 generated tokens, the classic
//!   CTRL/llama.cpp penalty): the logit of a token already generated recently is divided
//!   by the penalty when positive, multiplied when negative;
//! - a **loop stop**: when the generated tokens end with the same block of 1 to 32 tokens
//!   repeated back to back at least 3 times and over at least 16 tokens, generation ends
//!   there ([`crate::StopReason::Repetition`], finish reason `repetition`).
//!
//! ```
//! use agentbus_local::RepetitionGuard;
//!
//! let guard = RepetitionGuard::default();
//! // "a b c d" four times: a loop of period 4 over 16 tokens.
//! let looping: Vec<u32> = [1, 2, 3, 4].repeat(4);
//! assert_eq!(guard.loop_period(&looping), Some(4));
//! assert_eq!(guard.loop_period(&[5, 6, 7, 8, 9, 10]), None);
//! assert_eq!(RepetitionGuard::off().loop_period(&looping), None);
//! ```

/// How degenerate repetition is penalised and stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct RepetitionGuard {
    /// The repetition penalty (`1.0` is off).
    pub penalty: f32,
    /// How many of the last generated tokens the penalty looks at.
    pub penalty_window: usize,
    /// The longest repeated block the loop stop looks for (`0` turns it off).
    pub max_period: usize,
    /// How many back-to-back copies of a block make a loop.
    pub min_repeats: usize,
    /// How many tokens the copies must cover at least (so "!!!" is not a loop).
    pub min_span: usize,
}

impl Default for RepetitionGuard {
    fn default() -> Self {
        Self {
            penalty: 1.1,
            penalty_window: 64,
            max_period: 32,
            min_repeats: 3,
            min_span: 16,
        }
    }
}

impl RepetitionGuard {
    /// No penalty and no loop stop.
    pub fn off() -> Self {
        Self {
            penalty: 1.0,
            penalty_window: 0,
            max_period: 0,
            min_repeats: 0,
            min_span: 0,
        }
    }

    /// Applies the penalty to `logits` for the tokens at the end of `generated`.
    pub fn penalise(&self, logits: &mut [f32], generated: &[u32]) {
        if self.penalty == 1.0 || self.penalty <= 0.0 || self.penalty_window == 0 {
            return;
        }
        let window = &generated[generated.len().saturating_sub(self.penalty_window)..];
        let mut seen = std::collections::HashSet::with_capacity(window.len());
        for &token in window {
            if !seen.insert(token) {
                continue;
            }
            if let Some(logit) = logits.get_mut(token as usize) {
                if *logit >= 0.0 {
                    *logit /= self.penalty;
                } else {
                    *logit *= self.penalty;
                }
            }
        }
    }

    /// The period of the loop `generated` ends with, if it ends with one.
    pub fn loop_period(&self, generated: &[u32]) -> Option<usize> {
        if self.max_period == 0 || self.min_repeats < 2 {
            return None;
        }
        (1..=self.max_period).find(|&period| {
            let repeats = self.min_repeats.max(self.min_span.div_ceil(period));
            let span = period * repeats;
            if generated.len() < span {
                return false;
            }
            let tail = &generated[generated.len() - span..];
            tail.iter()
                .skip(period)
                .zip(tail)
                .all(|(later, earlier)| later == earlier)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_runs_are_not_loops_and_long_ones_are() {
        let guard = RepetitionGuard::default();
        // A single token repeated: a loop only once it covers min_span tokens.
        assert_eq!(guard.loop_period(&[9; 15]), None);
        assert_eq!(guard.loop_period(&[9; 16]), Some(1));
        // A 6-token phrase three times (18 tokens) after other text.
        let mut tokens = vec![1, 2, 3];
        for _ in 0..3 {
            tokens.extend([10, 11, 12, 13, 14, 15]);
        }
        assert_eq!(guard.loop_period(&tokens), Some(6));
        // Twice is not enough.
        assert_eq!(guard.loop_period(&tokens[..15]), None);
    }

    #[test]
    fn the_penalty_lowers_recent_tokens_only() {
        let guard = RepetitionGuard::default();
        let mut logits = vec![2.0, -2.0, 2.0];
        guard.penalise(&mut logits, &[0, 1, 0]);
        assert_eq!(logits, vec![2.0 / 1.1, -2.0 * 1.1, 2.0]);
        let mut untouched = vec![2.0, -2.0];
        RepetitionGuard::off().penalise(&mut untouched, &[0, 1]);
        assert_eq!(untouched, vec![2.0, -2.0]);
    }
}
