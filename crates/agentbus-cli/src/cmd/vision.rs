//! `agentbus vision --frames DIR | --video FILE [--prompt "…"]`: every frame goes through
//! the motion detector (offline, no model), and with a prompt a sample of the frames goes
//! to a vision language model on an OpenAI-compatible server. Detections and inferences
//! are catalogue events on the bus, in the store, and with `--events jsonl` on stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_llm::ApiKey;
use agentbus_voice::clock::SystemClock;
use agentbus_voice::publish::Emitter;
use agentbus_voice::vision::{
    InstrumentedVideoProcessor, InstrumentedVlm, MotionDetector, OpenAiVlm, VideoFrame, frames,
};
use anyhow::Context;

use super::run::{EventsFormat, JsonlWriter};
use crate::terminal::sanitize;
use crate::userinfo::mask_userinfo;

const DRAIN: Duration = Duration::from_secs(10);

/// Arguments of `agentbus vision`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus vision --frames ./snapshots
  agentbus vision --video clip.mp4 --rate 5 --events jsonl | jq -c .type
  agentbus vision --video clip.mp4 --prompt \"What happens here?\" --model gpt-4o-mini
  agentbus vision --frames ./cam --prompt \"Is anyone at the door?\" \\
      --base-url http://127.0.0.1:8000/v1 --model Qwen2-VL-2B-Instruct

Motion detection runs offline on every frame. A prompt sends up to --max-frames frames,
evenly spaced, to the VLM (OpenAI by default; any OpenAI-compatible server with image
input via --base-url). Videos are decoded with ffmpeg (apt-get install ffmpeg).")]
#[command(group(clap::ArgGroup::new("source").required(true).args(["frames", "video"])))]
pub struct Args {
    /// A directory of PNG or JPEG images, taken in name order.
    #[arg(long, value_name = "DIR")]
    pub frames: Option<PathBuf>,
    /// A video file (decoded by ffmpeg).
    #[arg(long, value_name = "FILE")]
    pub video: Option<PathBuf>,
    /// Frames per second: decoded from the video, or the pace of the directory's images.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Ask the VLM this about the frames.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Frames shown to the VLM (evenly spaced over the clip).
    #[arg(long, default_value_t = 4)]
    pub max_frames: usize,
    /// The VLM server's base URL (OpenAI-compatible).
    #[arg(
        long,
        value_name = "URL",
        env = "AGENTBUS_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub base_url: String,
    /// The VLM.
    #[arg(long, env = "AGENTBUS_MODEL", default_value = "gpt-4o-mini")]
    pub model: String,
    /// The environment variable holding the VLM server's key.
    #[arg(
        long,
        value_name = "VAR",
        env = "AGENTBUS_API_KEY_ENV",
        default_value = "OPENAI_API_KEY"
    )]
    pub api_key_env: String,
    /// Write every bus event to stdout in this format instead of the human output.
    #[arg(long, value_enum)]
    pub events: Option<EventsFormat>,
    /// Where the session's events are stored (`--store URL`, `--no-store`).
    #[command(flatten)]
    pub store: super::store_args::StoreArgs,
}

/// Runs `agentbus vision`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run_vision(args))
}

async fn load(args: &Args) -> anyhow::Result<Vec<VideoFrame>> {
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0 && args.rate <= 120.0,
        "--rate {}: give a frame rate in (0, 120]",
        args.rate
    );
    Ok(match (&args.frames, &args.video) {
        (Some(dir), _) => frames::read_dir(dir, Duration::from_secs_f64(1.0 / args.rate))?,
        (None, Some(video)) => frames::read_video(video, args.rate).await?,
        (None, None) => anyhow::bail!("give --frames DIR or --video FILE"),
    })
}

async fn run_vision(args: Args) -> anyhow::Result<ExitCode> {
    // Bad input fails before anything is published or stored.
    let clip = load(&args).await?;
    let bus = EventManager::new();
    let cancel = agentbus_agent::CancellationToken::new();
    let jsonl = match args.events {
        Some(EventsFormat::Jsonl) => Some(JsonlWriter::attach(&bus, cancel)?),
        None => None,
    };
    let human = jsonl.is_none();
    let recorder = args.store.record(&bus)?;
    let session_id = uuid::Uuid::new_v4().to_string();
    let emitter = Emitter::new(bus.clone(), "vision").with_session(Some(session_id.clone()));
    let clock = Arc::new(SystemClock::new());

    let mut motion = InstrumentedVideoProcessor::new(
        Box::new(MotionDetector::default()),
        emitter.clone(),
        clock.clone(),
    );
    let mut detections = 0;
    for frame in &clip {
        for found in motion.process(frame).await? {
            detections += 1;
            if human {
                let place = found
                    .bbox
                    .map(|[x, y, w, h]| format!(" at x={x} y={y} {w}x{h}"))
                    .unwrap_or_default();
                println!(
                    "{:>7.2} s  {} ({:.2}){place}",
                    frame.timestamp.as_secs_f64(),
                    found.label,
                    found.score
                );
            }
        }
    }
    if human {
        println!("{} frames, {detections} detections", clip.len());
    }

    let mut result = Ok(());
    if let Some(prompt) = &args.prompt {
        let engine = OpenAiVlm::new(
            &args.base_url,
            &args.model,
            ApiKey::from_env(&args.api_key_env),
        );
        let vlm = InstrumentedVlm::new(Box::new(engine), emitter.clone(), clock);
        let shown = frames::sample(&clip, args.max_frames);
        match vlm.infer(&shown, prompt).await {
            Ok(answer) if human => println!("{}: {}", args.model, sanitize(&answer.text)),
            Ok(_) => {}
            Err(error) => result = Err(error).context("asking the VLM"),
        }
    }

    if let Err(error) = bus.wait(DRAIN).await {
        tracing::warn!(%error, "the bus did not drain");
    }
    if let Some(recorder) = recorder {
        let location = mask_userinfo(recorder.location()).into_owned();
        let stored = recorder.finish().await?;
        eprintln!(
            "session {session_id}: {} events stored in {location}",
            stored.written
        );
    }
    let shutdown = bus.shutdown(DRAIN).await;
    tracing::debug!(?shutdown, "bus shut down");
    if let Some(jsonl) = jsonl {
        jsonl.finish()?;
    }
    result?;
    Ok(ExitCode::SUCCESS)
}
