//! `agentbus bench sse`: decoded chunks per second of the provider stream decoder
//! (SSE framing + protocol decoding + `StreamEvent` building) for a long OpenAI Chat
//! Completions stream and a long Anthropic Messages stream, beside a same-run baseline:
//! `serde_json` parsing the same `data:` payloads into `serde_json::Value`, already
//! split out, with no SSE framing and no event building.
//!
//! The long streams are recorded fixtures (mistral.rs Chat Completions with reasoning and
//! text; Anthropic thinking + text) with their delta events repeated, so they keep the
//! recorded shapes. The decoder is fed in 4 KiB pieces, as a socket delivers them.
//! Medians of `--reps` repetitions; target: at least 50% of the baseline.

use std::process::ExitCode;
use std::time::Instant;

use crate::stats::median;
use agentbus_llm::{Api, StreamDecoder, StreamEvent};
use serde_json::json;

/// Arguments of `agentbus bench sse`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus bench sse
  agentbus bench sse --chunks 1000 --reps 3 --json")]
pub struct Args {
    /// Approximate number of `data:` chunks in each long stream.
    #[arg(long, default_value_t = 4000)]
    pub chunks: usize,
    /// Repetitions; medians are reported.
    #[arg(long, default_value_t = 9)]
    pub reps: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

const TARGET_RATIO: f64 = 0.5;
const PIECE: usize = 4096;

const OPENAI_RECORDING: &[u8] =
    include_bytes!("../../agentbus-llm/tests/fixtures/mistralrs__reasoning_text.sse");
const ANTHROPIC_RECORDING: &[u8] =
    include_bytes!("../../agentbus-llm/tests/fixtures/anthropic__thinking.sse");

/// A recording's events (blank-line separated) with the run of events matching
/// `is_delta` repeated until the stream has about `target` events.
fn lengthen(
    recording: &[u8],
    target: usize,
    is_delta: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<u8>> {
    let text = std::str::from_utf8(recording)?;
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .collect();
    let first = events
        .iter()
        .position(|e| is_delta(e))
        .ok_or_else(|| anyhow::anyhow!("no delta events"))?;
    let last = events.iter().rposition(|e| is_delta(e)).unwrap_or(first);
    let deltas = &events[first..=last];
    let repeats = (target.saturating_sub(events.len() - deltas.len()) / deltas.len()).max(1);
    let mut out = String::with_capacity(text.len() * repeats);
    let mut push = |event: &str| {
        out.push_str(event);
        out.push_str("\n\n");
    };
    events[..first].iter().for_each(|e| push(e));
    for _ in 0..repeats {
        deltas.iter().for_each(|e| push(e));
    }
    events[last + 1..].iter().for_each(|e| push(e));
    Ok(out.into_bytes())
}

/// The JSON `data:` payloads of a body (what the baseline parses).
fn payloads(body: &[u8]) -> anyhow::Result<Vec<String>> {
    Ok(agentbus_llm::sse::SseDecoder::decode_all(body)?
        .into_iter()
        .map(|e| e.data)
        .filter(|d| d.trim() != "[DONE]")
        .collect())
}

/// Decodes `body` as a consumer would: piece by piece, handing each piece's events on
/// (here to `black_box`) before the next. Returns the number of events and the last one.
fn decode(api: Api, body: &[u8]) -> (usize, Option<StreamEvent>) {
    let mut decoder = StreamDecoder::new(api, None);
    let mut out = Vec::new();
    let mut count = 0;
    let mut last = None;
    for piece in body.chunks(PIECE) {
        decoder.feed(piece, &mut out);
        count += out.len();
        std::hint::black_box(&out);
        if let Some(event) = out.pop() {
            last = Some(event);
        }
        out.clear();
    }
    decoder.end(&mut out);
    count += out.len();
    (count, out.pop().or(last))
}

struct Measured {
    name: &'static str,
    chunks: usize,
    bytes: usize,
    events: usize,
    ours: f64,
    baseline: f64,
}

fn measure(name: &'static str, api: Api, body: &[u8], reps: usize) -> anyhow::Result<Measured> {
    let data = payloads(body)?;
    let (events, last) = decode(api, body);
    anyhow::ensure!(
        matches!(last, Some(StreamEvent::Finish(_))),
        "{name}: the long stream does not decode to a finish: {last:?}"
    );
    let (mut ours, mut baseline) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let decoded = decode(api, body);
        let elapsed = start.elapsed().as_secs_f64();
        std::hint::black_box(&decoded);
        ours.push(data.len() as f64 / elapsed);

        let start = Instant::now();
        let mut parsed = 0usize;
        for payload in &data {
            let value: serde_json::Value = serde_json::from_str(payload)?;
            parsed += usize::from(std::hint::black_box(&value).is_object());
        }
        let elapsed = start.elapsed().as_secs_f64();
        anyhow::ensure!(
            parsed == data.len(),
            "{name}: baseline parsed {parsed} of {}",
            data.len()
        );
        baseline.push(data.len() as f64 / elapsed);
    }
    Ok(Measured {
        name,
        chunks: data.len(),
        bytes: body.len(),
        events,
        ours: median(ours),
        baseline: median(baseline),
    })
}

/// Runs `agentbus bench sse`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let openai = lengthen(OPENAI_RECORDING, args.chunks, |e| {
        e.contains("\"finish_reason\":null") && !e.contains("[DONE]")
    })?;
    let anthropic = lengthen(ANTHROPIC_RECORDING, args.chunks, |e| {
        e.contains("content_block_delta")
    })?;
    let results = [
        measure(
            "openai-chat (mistral.rs recording)",
            Api::OpenAiChat,
            &openai,
            args.reps,
        )?,
        measure(
            "anthropic-messages (thinking recording)",
            Api::AnthropicMessages,
            &anthropic,
            args.reps,
        )?,
    ];
    let all_pass = results.iter().all(|r| r.ours / r.baseline >= TARGET_RATIO);
    if args.json {
        let rows: Vec<_> = results
            .iter()
            .map(|r| {
                json!({
                    "stream": r.name, "chunks": r.chunks, "bytes": r.bytes, "stream_events": r.events,
                    "decoder_chunks_per_s": r.ours, "baseline_chunks_per_s": r.baseline,
                    "ratio": r.ours / r.baseline, "target_ratio": TARGET_RATIO,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"reps": args.reps, "results": rows}))?
        );
    } else {
        println!(
            "agentbus bench sse — medians of {} repetitions, decoder fed in {PIECE}-byte pieces",
            args.reps
        );
        println!(
            "{:<42} {:>7} {:>9} {:>16} {:>18} {:>7}",
            "stream", "chunks", "bytes", "decoder chunks/s", "baseline chunks/s", "ratio"
        );
        for r in &results {
            println!(
                "{:<42} {:>7} {:>9} {:>16.0} {:>18.0} {:>6.0}%",
                r.name,
                r.chunks,
                r.bytes,
                r.ours,
                r.baseline,
                100.0 * r.ours / r.baseline
            );
        }
        println!(
            "baseline: serde_json::Value parse of the same data: payloads (pre-split, no events built); target >= {:.0}%: {}",
            TARGET_RATIO * 100.0,
            if all_pass { "met" } else { "NOT met" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
