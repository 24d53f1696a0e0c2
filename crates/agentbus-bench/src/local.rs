//! `agentbus bench local`: the embedded model (candle, Q8_0 copy of the weights) against
//! llama.cpp (llama-cpp-python, the original Q4_1 GGUF) in the same run, when
//! `python3 -c "import llama_cpp"` works.
//!
//! The prompt is "What is the capital of France?" in the model's chat template (the same
//! token ids for both). Each side runs in a fresh process of its own (so its peak RSS is
//! its own), warms up once, then generates `--tokens` tokens greedily `--reps` times with
//! the KV cache cleared each time; the medians are reported:
//! - `ttft_ms`: from the start of the call to the first generated token (the whole
//!   prompt processed plus one sampling);
//! - `prompt_tok_s`: prompt tokens / TTFT;
//! - `gen_tok_s`: tokens after the first / the time after the first;
//! - `peak_rss_mb`: the process's peak resident set (`VmHWM`, `ru_maxrss`).
//!
//! Both use the same number of threads (candle's, from `CANDLE_NUM_THREADS`/
//! `RAYON_NUM_THREADS` or the physical cores).

use std::io::Write;
use std::ops::ControlFlow;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use agentbus_local::template::{Turn, TurnRole};
use agentbus_local::{DEFAULT_MODEL, GenerationParams, LocalModel, ModelDir};
use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The benchmark's question.
const QUESTION: &str = "What is the capital of France?";

/// Targets from the issue: generation tok/s at least, TTFT ms at most, RSS MB at most.
const TARGET_GEN_TOK_S: f64 = 60.0;
const TARGET_TTFT_MS: f64 = 200.0;
const TARGET_RSS_MB: f64 = 450.0;

/// Arguments of `agentbus bench local`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus bench local
  agentbus bench local --reps 5 --tokens 128 --json
  CANDLE_NUM_THREADS=1 agentbus bench local   when the other core is busy")]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Measured repetitions per side (after one warm-up); medians are reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Tokens generated per repetition.
    #[arg(long, default_value_t = 64)]
    pub tokens: usize,
    /// Do not run the llama.cpp baseline even if llama-cpp-python is installed.
    #[arg(long)]
    pub no_python: bool,
    /// Internal: measure the candle side in this process and print JSON.
    #[arg(long, hide = true)]
    pub worker: bool,
}

/// Refuses to measure a model that is not pulled and converted yet: preparing it is
/// `agentbus model pull`'s job (with its progress and checks), not a benchmark's.
fn ensure_ready(dir: &ModelDir) -> anyhow::Result<()> {
    use agentbus_local::convert::{Q8Status, q8_status};
    use agentbus_local::pull::{ModelStatus, status};
    let spec = DEFAULT_MODEL;
    let ready =
        status(dir, spec)? == ModelStatus::Ready && q8_status(dir, spec)? == Q8Status::Ready;
    anyhow::ensure!(
        ready,
        "the local model {} is not ready in {}: run `agentbus model pull` first",
        spec.name,
        dir.path().display()
    );
    Ok(())
}

/// Runs `agentbus bench local`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.reps == 0 || args.tokens < 2 {
        bail!("--reps must be at least 1 and --tokens at least 2");
    }
    let dir = ModelDir::from_env()?;
    if args.worker {
        let result = measure_candle(&dir, &args)?;
        println!("{result}");
        return Ok(ExitCode::SUCCESS);
    }
    // Pull and convert outside the measured processes.
    ensure_ready(&dir)?;

    let candle = run_worker(&args)?;
    let prompt: Vec<u32> =
        serde_json::from_value(candle["prompt_ids"].clone()).context("the worker's prompt ids")?;
    let llama = if args.no_python || !llama_cpp_available() {
        None
    } else {
        Some(measure_llama_cpp(&dir, &args, &prompt, threads(&candle))?)
    };
    let summary = summarise(&candle, llama.as_ref());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_table(&summary, &args);
    }
    Ok(ExitCode::SUCCESS)
}

fn threads(result: &Value) -> u64 {
    result["threads"].as_u64().unwrap_or(1)
}

fn run_worker(args: &Args) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("finding the agentbus binary")?;
    let output = Command::new(exe)
        .args(["local", "--worker", "--reps"])
        .arg(args.reps.to_string())
        .arg("--tokens")
        .arg(args.tokens.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("starting the measuring process")?;
    if !output.status.success() {
        bail!("the measuring process failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).context("reading the measuring process's result")
}

/// The candle side, in this (fresh) process.
fn measure_candle(dir: &ModelDir, args: &Args) -> anyhow::Result<Value> {
    let load_started = Instant::now();
    let mut model = LocalModel::load(dir, DEFAULT_MODEL)?;
    let load_ms = load_started.elapsed().as_secs_f64() * 1e3;
    let prompt = model.prompt(&[Turn::new(TurnRole::User, QUESTION)])?;
    let params = GenerationParams {
        max_tokens: args.tokens,
        ..GenerationParams::default()
    };
    // The model may end its turn before `--tokens`; the rates use the real counts.
    let mut runs = Vec::new();
    let mut text = String::new();
    for rep in 0..=args.reps {
        let generation = model.generate(&prompt, &params, &mut |_| ControlFlow::Continue(()))?;
        if rep == 0 {
            text = generation.text.clone();
            continue; // warm-up
        }
        runs.push(json!({
            "ttft_ms": generation.time_to_first_token.as_secs_f64() * 1e3,
            "prompt_tok_s": generation.prompt_tokens_per_second(),
            "gen_tok_s": generation.generation_tokens_per_second(),
            "completion_tokens": generation.completion_tokens,
        }));
    }
    Ok(json!({
        "engine": "agentbus-local (candle 0.11.1, Q8_0)",
        "threads": agentbus_local::inference_threads(),
        "load_ms": load_ms,
        "prompt_ids": prompt,
        "runs": runs,
        "peak_rss_mb": peak_rss_mb(),
        "text": text,
    }))
}

/// This process's peak resident set in MB (`VmHWM` of `/proc/self/status`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0 / 1e6)
}

fn llama_cpp_available() -> bool {
    Command::new(agentbus_local::pull::python_interpreter())
        .args(["-c", "import llama_cpp"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The llama.cpp side: the same prompt ids, greedy, same threads, fresh process.
const LLAMA_CPP_SCRIPT: &str = r#"
import json, resource, sys, time
from llama_cpp import Llama
config = json.loads(sys.argv[1])
t0 = time.perf_counter()
llm = Llama(model_path=config["model"], n_ctx=512, n_threads=config["threads"],
            n_threads_batch=config["threads"], verbose=False)
load_ms = (time.perf_counter() - t0) * 1e3
prompt = config["prompt"]
runs = []
text = ""
for rep in range(config["reps"] + 1):
    llm.reset()
    start = time.perf_counter()
    first = None
    pieces = []
    n = 0
    for token in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
        now = time.perf_counter()
        if token == llm.token_eos() or token in (1, 2):
            break
        if first is None:
            first = now
        pieces.append(token)
        n += 1
        if n >= config["tokens"]:
            break
    end = time.perf_counter()
    if rep == 0:
        text = llm.detokenize(pieces).decode("utf-8", "replace")
        continue
    ttft = first - start
    runs.append({"ttft_ms": ttft * 1e3, "prompt_tok_s": len(prompt) / ttft,
                 "gen_tok_s": (n - 1) / (end - first) if n > 1 else 0.0,
                 "completion_tokens": n})
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
import llama_cpp
print(json.dumps({"engine": "llama.cpp (llama-cpp-python %s, Q4_1)" % llama_cpp.__version__,
                  "threads": config["threads"], "load_ms": load_ms, "runs": runs,
                  "peak_rss_mb": rss, "text": text}))
"#;

fn measure_llama_cpp(
    dir: &ModelDir,
    args: &Args,
    prompt: &[u32],
    threads: u64,
) -> anyhow::Result<Value> {
    let config = json!({
        "model": dir.model_path(DEFAULT_MODEL),
        "threads": threads,
        "prompt": prompt,
        "reps": args.reps,
        "tokens": args.tokens,
    });
    let output = Command::new(agentbus_local::pull::python_interpreter())
        .args(["-c", LLAMA_CPP_SCRIPT])
        .arg(config.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("starting llama-cpp-python")?;
    if !output.status.success() {
        bail!("the llama.cpp baseline failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).context("reading the llama.cpp baseline's result")
}

fn median(result: &Value, key: &str) -> Option<f64> {
    let mut values: Vec<f64> = result["runs"]
        .as_array()?
        .iter()
        .filter_map(|run| run[key].as_f64())
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

const METRICS: [&str; 3] = ["ttft_ms", "prompt_tok_s", "gen_tok_s"];

fn side(result: &Value) -> Value {
    let mut side = json!({
        "engine": result["engine"],
        "threads": result["threads"],
        "load_ms": result["load_ms"],
        "peak_rss_mb": result["peak_rss_mb"],
        "completion_tokens": median(result, "completion_tokens"),
        "text": result["text"],
        "runs": result["runs"],
    });
    for metric in METRICS {
        side[metric] = json!(median(result, metric));
    }
    side
}

fn summarise(candle: &Value, llama: Option<&Value>) -> Value {
    let ours = side(candle);
    let mut summary = json!({
        "prompt": QUESTION,
        "prompt_tokens": candle["prompt_ids"].as_array().map(Vec::len),
        "agentbus": ours,
        "targets": {
            "gen_tok_s_min": TARGET_GEN_TOK_S,
            "ttft_ms_max": TARGET_TTFT_MS,
            "peak_rss_mb_max": TARGET_RSS_MB,
        },
    });
    if let Some(llama) = llama {
        let theirs = side(llama);
        let mut ratios = json!({});
        for metric in METRICS.iter().chain(&["peak_rss_mb"]) {
            if let (Some(a), Some(b)) = (ours[*metric].as_f64(), theirs[*metric].as_f64())
                && b > 0.0
            {
                ratios[*metric] = json!(a / b);
            }
        }
        summary["llama_cpp"] = theirs;
        summary["ratio_agentbus_over_llama_cpp"] = ratios;
    }
    summary
}

fn print_table(summary: &Value, args: &Args) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "agentbus bench local: {:?} ({} prompt tokens), {} tokens greedy, median of {}",
        QUESTION, summary["prompt_tokens"], args.tokens, args.reps
    );
    let number = |value: &Value, digits: usize| {
        value
            .as_f64()
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
    };
    let ours = &summary["agentbus"];
    let theirs = summary.get("llama_cpp");
    let ratios = summary.get("ratio_agentbus_over_llama_cpp");
    let _ = writeln!(
        out,
        "{:<16} {:>12} {:>12} {:>10} {:>8}",
        "metric", "agentbus", "llama.cpp", "ratio", "target"
    );
    let rows = [
        ("ttft_ms", "TTFT ms", 1, format!("<= {TARGET_TTFT_MS}")),
        ("prompt_tok_s", "prompt tok/s", 1, String::new()),
        (
            "gen_tok_s",
            "gen tok/s",
            1,
            format!(">= {TARGET_GEN_TOK_S}"),
        ),
        (
            "peak_rss_mb",
            "peak RSS MB",
            0,
            format!("<= {TARGET_RSS_MB}"),
        ),
    ];
    for (key, label, digits, target) in rows {
        let _ = writeln!(
            out,
            "{:<16} {:>12} {:>12} {:>10} {:>8}",
            label,
            number(&ours[key], digits),
            theirs.map_or_else(|| "-".to_owned(), |t| number(&t[key], digits)),
            ratios.map_or_else(|| "-".to_owned(), |r| number(&r[key], 2)),
            target
        );
    }
    let _ = writeln!(
        out,
        "agentbus:  {} threads, {}",
        ours["threads"],
        ours["engine"].as_str().unwrap_or("")
    );
    let _ = writeln!(out, "  answer: {:?}", ours["text"].as_str().unwrap_or(""));
    match theirs {
        Some(theirs) => {
            let _ = writeln!(
                out,
                "llama.cpp: {} threads, {}",
                theirs["threads"],
                theirs["engine"].as_str().unwrap_or("")
            );
            let _ = writeln!(out, "  answer: {:?}", theirs["text"].as_str().unwrap_or(""));
        }
        None => {
            let _ = writeln!(
                out,
                "llama.cpp: not measured (python3 -c \"import llama_cpp\" failed, or --no-python)"
            );
        }
    }
}
