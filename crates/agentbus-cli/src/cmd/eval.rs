//! `agentbus eval`: a small built-in evaluation of the agent on any provider.
//!
//! About twenty short tasks, each with a checker: some need a tool (arithmetic, a unit
//! conversion, reading a file, listing files, the date), some need none (a greeting, a
//! fact). Each runs as its own agent run, with the same agent `agentbus run` builds
//! (system prompt, built-in tools, tool choice: [`super::agent_setup`]), in a fresh
//! temporary workspace holding the files the tasks ask about. Per task it reports pass
//! or fail, the tool calls and whether each was valid (a known tool, arguments valid
//! against its JSON Schema), whether the answer was right, TTFT and total time; then the
//! accuracy. `--json` prints the same as one JSON object.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentbus::EventManager;
use agentbus_agent::ToolChoicePolicy;
use agentbus_agent::react::{ReactEvent, ReactOutput};
use agentbus_agent::tools::Sandbox;
use agentbus_llm::{ChatModel, ToolDefinition};
use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};

use super::provider::ProviderArgs;

/// Arguments of `agentbus eval`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus eval                                 the embedded model
  agentbus eval --json | jq .accuracy
  agentbus eval --provider openai --model gpt-4o-mini
  agentbus eval --only arith                    the tasks whose id contains `arith`")]
pub struct Args {
    /// The model to evaluate.
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// The tool choice, as for `agentbus run --tool-choice` (default: the provider's).
    #[arg(long, value_name = "CHOICE")]
    pub tool_choice: Option<ToolChoicePolicy>,
    /// Only the tasks whose id contains this text.
    #[arg(long, value_name = "TEXT")]
    pub only: Option<String>,
    /// The most iterations per task.
    #[arg(long, default_value_t = 3)]
    pub max_iterations: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One task: a prompt, the tool it needs (if any), and the texts a right answer
/// contains (any one of them, case-insensitive, thousands separators ignored).
pub struct Task {
    /// A short id (`arith-mul`).
    pub id: &'static str,
    /// What the user asks.
    pub prompt: &'static str,
    /// The tool a right run calls.
    pub tool: Option<&'static str>,
    /// A right answer contains one of these.
    pub answers: &'static [&'static str],
}

/// The tasks.
pub const TASKS: &[Task] = &[
    Task {
        id: "arith-mul",
        prompt: "What is 17 * 23?",
        tool: Some("calculator"),
        answers: &["391"],
    },
    Task {
        id: "arith-add",
        prompt: "What is 1234 + 5678?",
        tool: Some("calculator"),
        answers: &["6912"],
    },
    Task {
        id: "arith-sub",
        prompt: "What is 1000 - 357?",
        tool: Some("calculator"),
        answers: &["643"],
    },
    Task {
        id: "arith-div",
        prompt: "What is 144 divided by 12?",
        tool: Some("calculator"),
        answers: &["12"],
    },
    Task {
        id: "arith-paren",
        prompt: "Calculate (7 + 3) * 12.",
        tool: Some("calculator"),
        answers: &["120"],
    },
    Task {
        id: "arith-pow",
        prompt: "What is 2 to the power of 10?",
        tool: Some("calculator"),
        answers: &["1024"],
    },
    Task {
        id: "arith-big",
        prompt: "What is 123 * 456?",
        tool: Some("calculator"),
        answers: &["56088"],
    },
    Task {
        id: "arith-word",
        prompt: "I have 48 apples and give away 19. How many are left?",
        tool: Some("calculator"),
        answers: &["29"],
    },
    Task {
        id: "unit-km",
        prompt: "How many meters are in 7 kilometers?",
        tool: Some("calculator"),
        answers: &["7000"],
    },
    Task {
        id: "unit-hours",
        prompt: "How many minutes are in 3 hours?",
        tool: Some("calculator"),
        answers: &["180"],
    },
    Task {
        id: "unit-days",
        prompt: "How many hours are in 4 days?",
        tool: Some("calculator"),
        answers: &["96"],
    },
    Task {
        id: "file-read",
        prompt: "Read the file notes.txt and tell me the launch code.",
        tool: Some("read_file"),
        answers: &["4417"],
    },
    Task {
        id: "file-read-2",
        prompt: "What does the file motto.txt say?",
        tool: Some("read_file"),
        answers: &["measure twice"],
    },
    Task {
        id: "file-list",
        prompt: "List the files in the current directory.",
        tool: Some("list_dir"),
        answers: &["notes.txt", "motto.txt"],
    },
    Task {
        id: "time-year",
        prompt: "What year is it now?",
        tool: Some("current_time"),
        answers: &[CURRENT_YEAR_MARKER],
    },
    Task {
        id: "chat-hello",
        prompt: "Hello!",
        tool: None,
        answers: &["hello", "hi", "help", "welcome"],
    },
    Task {
        id: "chat-thanks",
        prompt: "Thank you!",
        tool: None,
        answers: &["welcome", "glad", "pleasure", "help"],
    },
    Task {
        id: "fact-france",
        prompt: "What is the capital of France?",
        tool: None,
        answers: &["paris"],
    },
    Task {
        id: "fact-sky",
        prompt: "What color is the sky on a clear day?",
        tool: None,
        answers: &["blue"],
    },
    Task {
        id: "fact-water",
        prompt: "What is the chemical formula of water?",
        tool: None,
        answers: &["h2o", "h₂o"],
    },
];

/// Stands for the current year in [`Task::answers`].
const CURRENT_YEAR_MARKER: &str = "{current_year}";

/// The files the tasks ask about, written into the temporary workspace.
const FILES: &[(&str, &str)] = &[
    ("notes.txt", "Meeting notes.\nThe launch code is 4417.\n"),
    ("motto.txt", "Measure twice, cut once.\n"),
];

/// What one task did.
#[derive(Debug, Default)]
struct Outcome {
    answer: String,
    calls: Vec<(String, Value)>,
    valid_calls: usize,
    ttft: Option<Duration>,
    total: Duration,
    error: Option<String>,
}

/// Runs `agentbus eval`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(evaluate(args))
}

async fn evaluate(args: Args) -> anyhow::Result<ExitCode> {
    let workspace = tempfile::Builder::new()
        .prefix("agentbus-eval-")
        .tempdir()
        .context("creating the evaluation workspace")?;
    for (name, content) in FILES {
        std::fs::write(workspace.path().join(name), content)
            .with_context(|| format!("writing {name}"))?;
    }
    let model: Arc<dyn ChatModel> = args.provider.build()?;
    let year = current_year();
    let tasks: Vec<&Task> = TASKS
        .iter()
        .filter(|task| {
            args.only
                .as_deref()
                .is_none_or(|only| task.id.contains(only))
        })
        .collect();
    anyhow::ensure!(!tasks.is_empty(), "no task id contains {:?}", args.only);

    let mut rows = Vec::new();
    let started = Instant::now();
    for task in &tasks {
        let bus = EventManager::new();
        let session_id = format!("eval-{}", task.id);
        let agent = super::agent_setup::AgentSetup {
            model: model.clone(),
            provider: args.provider.provider,
            sandbox: Sandbox::new(workspace.path()).context("setting up the file tools")?,
            tool_choice: args.tool_choice.clone(),
            max_iterations: args.max_iterations,
            session_id: &session_id,
        }
        .build(&bus);
        let definitions = agent.tool_definitions().to_vec();
        let outcome = run_task(&agent, task, &definitions).await;
        agent.finish();
        let _ = bus.shutdown(Duration::from_secs(5)).await;
        let row = judge(task, &outcome, &year);
        if !args.json {
            print_row(&row);
        }
        rows.push(row);
    }
    let summary = summarise(&rows, started.elapsed(), model.provider(), model.name());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_task(agent: &agentbus_agent::Agent, task: &Task, tools: &[ToolDefinition]) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::default();
    let mut stream = agent.run(task.prompt);
    while let Some(output) = stream.next().await {
        let ReactOutput::Event(event) = &output else {
            continue;
        };
        if event.origin().fork_depth > 0 {
            continue;
        }
        match &event.event {
            ReactEvent::LlmChunkArrive(_) | ReactEvent::ToolCallArgumentsDelta(_)
                if outcome.ttft.is_none() =>
            {
                outcome.ttft = Some(started.elapsed());
            }
            ReactEvent::ToolCallStart(start) => {
                if call_is_valid(tools, &start.tool_name, &start.arguments) {
                    outcome.valid_calls += 1;
                }
                outcome
                    .calls
                    .push((start.tool_name.clone(), start.arguments.clone()));
            }
            ReactEvent::ReactEnd(end) => {
                outcome.answer = end.response.clone();
                outcome.error = end.error.as_ref().map(|error| error.message.clone());
            }
            _ => {}
        }
    }
    outcome.total = started.elapsed();
    outcome
}

/// Whether a call names an offered tool and its arguments are valid against the tool's
/// JSON Schema.
fn call_is_valid(tools: &[ToolDefinition], name: &str, arguments: &Value) -> bool {
    let Some(tool) = tools.iter().find(|tool| tool.name == name) else {
        return false;
    };
    match jsonschema::validator_for(&tool.parameters) {
        Ok(validator) => validator.is_valid(arguments),
        Err(_) => arguments.is_object(),
    }
}

/// The current year (UTC), for the date task: from the `current_time` tool itself, so the
/// answer is judged by the clock the agent asked.
fn current_year() -> String {
    agentbus_agent::tools::time::now_in(None)
        .ok()
        .and_then(|now| {
            now["date"]
                .as_str()
                .and_then(|d| d.get(..4))
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

fn normalise(text: &str) -> String {
    text.to_lowercase().replace([',', '\u{202f}'], "")
}

fn judge(task: &Task, outcome: &Outcome, year: &str) -> Value {
    let answer = normalise(&outcome.answer);
    let right_answer = task.answers.iter().any(|expected| {
        let expected = expected.replace(CURRENT_YEAR_MARKER, year);
        answer.contains(&normalise(&expected))
    });
    let used_tool = match task.tool {
        Some(tool) => outcome.calls.iter().any(|(name, _)| name == tool),
        None => true,
    };
    let all_valid = outcome.valid_calls == outcome.calls.len();
    json!({
        "id": task.id,
        "prompt": task.prompt,
        "expected_tool": task.tool,
        "pass": right_answer && used_tool && all_valid && outcome.error.is_none(),
        "answer_correct": right_answer,
        "used_expected_tool": used_tool,
        "tool_calls": outcome.calls.iter().map(|(name, arguments)| json!({"name": name, "arguments": arguments})).collect::<Vec<_>>(),
        "valid_tool_calls": outcome.valid_calls,
        "ttft_ms": outcome.ttft.map(|ttft| ttft.as_secs_f64() * 1e3),
        "total_ms": outcome.total.as_secs_f64() * 1e3,
        "answer": outcome.answer,
        "error": outcome.error,
    })
}

fn summarise(rows: &[Value], elapsed: Duration, provider: &str, model: &str) -> Value {
    let count = |key: &str| rows.iter().filter(|row| row[key] == true).count();
    let calls: usize = rows
        .iter()
        .map(|row| row["tool_calls"].as_array().map_or(0, Vec::len))
        .sum();
    let valid: usize = rows
        .iter()
        .map(|row| row["valid_tool_calls"].as_u64().unwrap_or(0) as usize)
        .sum();
    let mut ttfts: Vec<f64> = rows
        .iter()
        .filter_map(|row| row["ttft_ms"].as_f64())
        .collect();
    ttfts.sort_by(f64::total_cmp);
    let passed = count("pass");
    json!({
        "provider": provider,
        "model": model,
        "tasks": rows.len(),
        "passed": passed,
        "accuracy": passed as f64 / rows.len().max(1) as f64,
        "answers_correct": count("answer_correct"),
        "tool_calls": calls,
        "valid_tool_calls": valid,
        "tool_call_validity": if calls == 0 { 1.0 } else { valid as f64 / calls as f64 },
        "median_ttft_ms": ttfts.get(ttfts.len() / 2),
        "total_s": elapsed.as_secs_f64(),
        "results": rows,
    })
}

fn print_row(row: &Value) {
    let mut out = std::io::stdout().lock();
    let calls: Vec<String> = row["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|call| {
            format!(
                "{}({})",
                call["name"].as_str().unwrap_or("?"),
                call["arguments"]
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "{:<4} {:<12} ttft {:>7} ms  total {:>7.0} ms  calls {} ({} valid)  {}",
        if row["pass"] == true { "PASS" } else { "FAIL" },
        row["id"].as_str().unwrap_or(""),
        row["ttft_ms"]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |ttft| format!("{ttft:.0}")),
        row["total_ms"].as_f64().unwrap_or(0.0),
        if calls.is_empty() {
            "none".to_owned()
        } else {
            calls.join(", ")
        },
        row["valid_tool_calls"],
        one_line(row["answer"].as_str().unwrap_or("")),
    );
}

fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 70 {
        format!("{}…", line.chars().take(70).collect::<String>())
    } else {
        line
    }
}

fn print_summary(summary: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{} / {}: {} of {} tasks passed ({:.0}%), {} of {} tool calls valid, median TTFT {} ms, {:.1} s in all",
        summary["provider"].as_str().unwrap_or(""),
        summary["model"].as_str().unwrap_or(""),
        summary["passed"],
        summary["tasks"],
        summary["accuracy"].as_f64().unwrap_or(0.0) * 100.0,
        summary["valid_tool_calls"],
        summary["tool_calls"],
        summary["median_ttft_ms"]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |ttft| format!("{ttft:.0}")),
        summary["total_s"].as_f64().unwrap_or(0.0),
    );
}
