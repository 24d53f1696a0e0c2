//! `agentbus bench voice`: each offline voice stage on this machine, beside the figure it
//! is judged against, measured in the same run.
//!
//! - **VAD**: the cost of one 32 ms window (Silero; the energy VAD beside it) as a share
//!   of the 32 ms of audio it covers (target ≤ 1 %).
//! - **STT**: Whisper tiny.en on the 20 sentences of `agentbus_voice::bench_data`, spoken
//!   by espeak-ng: real-time factor (processing / audio, target ≤ 0.5) and word error
//!   rate (target ≤ 20 %).
//! - **TTS**: espeak-ng on the same sentences: time to first audio (target ≤ 150 ms) and
//!   real-time factor.
//! - **Voice-to-voice**: the whole offline pipeline (Silero → turn → Whisper → the agent
//!   → espeak) on a spoken question, from the end of the user's speech to the first
//!   reply audio (target ≤ 1.5 s plus the end-of-turn silence).
//!
//! Medians (and p90 where it matters) are reported; the machine's other load shows in
//! them, so say it was shared when quoting.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use agentbus_agent::Agent;
use agentbus_agent::testing::{ScriptedTurns, Turn, finish, text};
use agentbus_llm::ChatModel;
use agentbus_local::ModelDir;
use agentbus_voice::bench_data::SENTENCES;
use agentbus_voice::clock::SystemClock;
use agentbus_voice::models;
use agentbus_voice::pipeline::{PipelineConfig, Stages, VoicePipeline};
use agentbus_voice::publish::Emitter;
use agentbus_voice::stt::{WhisperStt, normalized_words, word_error_rate};
use agentbus_voice::transport::WavFileTransport;
use agentbus_voice::tts::{EspeakTts, InstrumentedTts, SynthesisItem};
use agentbus_voice::turn::{SilenceTurnDetector, TurnConfig};
use agentbus_voice::vad::{EnergyVad, SileroVad, Vad};
use agentbus_voice::{AudioFrame, wav};
use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::{Value, json};

const TARGET_VAD_SHARE: f64 = 0.01;
const TARGET_STT_RTF: f64 = 0.5;
const TARGET_WER: f64 = 0.20;
const TARGET_TTS_TTFB_MS: f64 = 150.0;
const TARGET_V2V_MS: f64 = 1500.0;

/// Arguments of `agentbus bench voice`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus bench voice
  agentbus bench voice --sentences 5 --json
  agentbus bench voice --agent local     voice-to-voice with the embedded model answering")]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How many of the 20 sentences to use for STT and TTS.
    #[arg(long, default_value_t = 20)]
    pub sentences: usize,
    /// Who answers in the voice-to-voice run: a scripted model (the pipeline's own
    /// latency) or the embedded local model.
    #[arg(long, value_enum, default_value_t = AgentKind::Scripted)]
    pub agent: AgentKind,
    /// Voice-to-voice runs (medians reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Frames sent in a burst through the frame pipeline (and Pipecat's).
    #[arg(long, default_value_t = 100_000)]
    pub frames: usize,
    /// Frames sent one per millisecond for the per-frame latency.
    #[arg(long, default_value_t = 3_000)]
    pub paced_frames: usize,
    /// Python with `pipecat-ai` installed (3.12 or later), for the frame pipeline's
    /// baseline; skipped when it cannot import pipecat.
    #[arg(long, default_value = "python3")]
    pub python: std::path::PathBuf,
    /// Run this copy of `bench/pipecat_frames.py` instead of the built-in one.
    #[arg(long, value_name = "PY")]
    pub pipecat_script: Option<std::path::PathBuf>,
}

/// Who answers in the voice-to-voice measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AgentKind {
    /// A scripted two-sentence answer, streamed at once.
    Scripted,
    /// SmolLM2-135M on candle.
    Local,
}

fn median(values: &mut [f64]) -> f64 {
    crate::stats::median(values.to_vec())
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    crate::stats::percentile(values, p)
}

fn speak(
    text: &str,
    dir: &std::path::Path,
    i: usize,
) -> anyhow::Result<(std::path::PathBuf, AudioFrame)> {
    let path = dir.join(format!("s{i}.wav"));
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .context("running espeak-ng (apt-get install espeak-ng)")?;
    if !status.success() {
        bail!("espeak-ng failed on {text:?}");
    }
    let clip = wav::read_wav(&path)?;
    Ok((path, clip))
}

/// Runs `agentbus bench voice`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.sentences == 0 || args.sentences > SENTENCES.len() || args.reps == 0 {
        bail!("--sentences must be 1..=20 and --reps at least 1");
    }
    let dir = ModelDir::from_env()?;
    for model in models::VOICE_MODELS {
        model.pull(&dir, false, &mut |_, _| {})?;
    }
    if args.agent == AgentKind::Local {
        crate::local::ensure_ready(&dir)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(measure(&args, &dir))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_table(&result);
    }
    Ok(ExitCode::SUCCESS)
}

/// Whisper's real-time factor and word error rate over `clips`, and what it heard.
fn transcribe_all(
    whisper: &WhisperStt,
    sentences: &[&str],
    clips: &[(std::path::PathBuf, AudioFrame)],
) -> anyhow::Result<Value> {
    let (mut processing, mut audio) = (0f64, 0f64);
    let (mut errors, mut words) = (0f64, 0usize);
    let mut rtfs = Vec::new();
    let mut transcripts = Vec::new();
    for (sentence, (_, clip)) in sentences.iter().zip(clips) {
        let start = Instant::now();
        let transcript = whisper.transcribe_blocking(clip)?;
        let took = start.elapsed().as_secs_f64();
        processing += took;
        audio += clip.duration().as_secs_f64();
        rtfs.push(took / clip.duration().as_secs_f64());
        let n = normalized_words(sentence).len();
        errors += word_error_rate(sentence, &transcript.text) * n as f64;
        words += n;
        transcripts.push(json!({"reference": sentence, "heard": transcript.text}));
    }
    Ok(json!({
        "real_time_factor": processing / audio,
        "real_time_factor_median": median(&mut rtfs),
        "word_error_rate": errors / words as f64,
        "transcripts": transcripts,
    }))
}

/// The Pipecat baseline script, built in so the benchmark runs from any directory.
const PIPECAT_SCRIPT: &str = include_str!("../../../bench/pipecat_frames.py");
/// Pass-through stages in the frame-pipeline comparison.
const FRAME_STAGES: usize = 5;

/// 20 ms of 16 kHz mono audio.
fn audio_frame(i: usize) -> AudioFrame {
    AudioFrame::new(
        vec![(i % 7) as i16; 320],
        16_000,
        1,
        std::time::Duration::from_millis(20) * (i as u32),
    )
}

/// The voice pipeline's input path with `stages` pass-through processors: frames arrive on
/// a bounded channel (the transport), run through the chain inline in one task (as
/// `VoicePipeline::on_frame` runs them) and leave on another bounded channel (the output).
/// Returns the burst's frames per second and the paced run's per-frame latencies in µs.
async fn frame_pipeline(stages: usize, burst: usize, paced: usize) -> (f64, Vec<f64>) {
    use agentbus_voice::processor::{PassThrough, ProcessorChain};
    use tokio::sync::mpsc;

    async fn run(
        stages: usize,
        count: usize,
        pace: Option<std::time::Duration>,
    ) -> (std::time::Duration, Vec<f64>) {
        let (in_tx, mut in_rx) = mpsc::channel::<(Instant, AudioFrame)>(64);
        let (out_tx, mut out_rx) = mpsc::channel::<(Instant, AudioFrame)>(64);
        let pipeline = tokio::spawn(async move {
            let mut chain = ProcessorChain::new();
            for _ in 0..stages {
                chain.push(PassThrough);
            }
            while let Some((sent, frame)) = in_rx.recv().await {
                if let Ok(Some(frame)) = chain.process(frame)
                    && out_tx.send((sent, frame)).await.is_err()
                {
                    break;
                }
            }
        });
        let sink = tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            while let Some((sent, _)) = out_rx.recv().await {
                latencies.push(sent.elapsed().as_secs_f64() * 1e6);
            }
            (Instant::now(), latencies)
        });
        let start = Instant::now();
        let mut ticks = pace.map(|period| {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        for i in 0..count {
            if let Some(ticks) = ticks.as_mut() {
                ticks.tick().await;
            }
            if in_tx.send((Instant::now(), audio_frame(i))).await.is_err() {
                break;
            }
        }
        drop(in_tx);
        let _ = pipeline.await;
        let (end, latencies) = sink.await.unwrap_or_else(|_| (Instant::now(), Vec::new()));
        (end - start, latencies)
    }
    let (took, _) = run(stages, burst, None).await;
    let (_, latencies) = run(stages, paced, Some(std::time::Duration::from_millis(1))).await;
    (burst as f64 / took.as_secs_f64(), latencies)
}

/// Pipecat's figures for the same shape, or why there are none.
fn pipecat(args: &Args) -> Value {
    if let Err(reason) = crate::python::can_import(&args.python, "pipecat") {
        return json!({"available": false, "reason": reason});
    }
    crate::python::run_json(
        &args.python,
        crate::python::peer_command(&args.python, args.pipecat_script.as_deref(), PIPECAT_SCRIPT)
            .args(["--frames", &args.frames.min(20_000).to_string()])
            .args(["--paced-frames", &args.paced_frames.to_string()])
            .args(["--stages", &FRAME_STAGES.to_string()]),
    )
}

async fn measure(args: &Args, dir: &ModelDir) -> anyhow::Result<Value> {
    let scratch = tempfile::tempdir().context("a scratch directory")?;
    let sentences = &SENTENCES[..args.sentences];
    let mut clips = Vec::new();
    for (i, sentence) in sentences.iter().enumerate() {
        clips.push(speak(sentence, scratch.path(), i)?);
    }

    // VAD: every 32 ms window of all the clips at 16 kHz.
    let audio16: Vec<AudioFrame> = clips
        .iter()
        .map(|(_, c)| agentbus_voice::resample::resample(c, 16_000))
        .collect::<Result<_, _>>()?;
    let mut silero = SileroVad::load(&models::silero_path(dir)?)?;
    let mut energy = EnergyVad {
        window: 512,
        ..EnergyVad::default()
    };
    let vad_cost = |vad: &mut dyn Vad| -> anyhow::Result<(f64, usize)> {
        let mut times = Vec::new();
        for clip in &audio16 {
            vad.reset();
            for window in clip.samples.chunks_exact(512) {
                let start = Instant::now();
                vad.probability(window)?;
                times.push(start.elapsed().as_secs_f64() * 1e6);
            }
        }
        let n = times.len();
        Ok((median(&mut times), n))
    };
    let (silero_us, windows) = vad_cost(&mut silero)?;
    let (energy_us, _) = vad_cost(&mut energy)?;

    // STT: the full 30 s window (the default), and the audio with a 700-frame margin.
    let whisper = WhisperStt::load(&models::whisper_files(dir)?)?;
    whisper.transcribe_blocking(&clips[0].1)?; // warm-up
    let full = transcribe_all(&whisper, sentences, &clips)?;
    let trimmed = transcribe_all(&whisper.clone().with_audio_context(700), sentences, &clips)?;
    let audio: f64 = clips.iter().map(|(_, c)| c.duration().as_secs_f64()).sum();

    // TTS.
    let tts = InstrumentedTts::new(
        Arc::new(EspeakTts::default()),
        Emitter::detached("bench"),
        Arc::new(SystemClock::new()),
    );
    let mut ttfbs = Vec::new();
    let mut tts_rtfs = Vec::new();
    for sentence in sentences {
        let mut stream = tts.synthesize(sentence).await;
        while let Some(item) = stream.next().await {
            if let SynthesisItem::Done(report) = item? {
                if let Some(ttfb) = report.time_to_first_byte {
                    ttfbs.push(ttfb.as_secs_f64() * 1000.0);
                }
                if let Some(rtf) = report.real_time_factor {
                    tts_rtfs.push(rtf);
                }
            }
        }
    }

    // Voice-to-voice.
    let (question_path, _) = speak("Hello. What is the capital of France?", scratch.path(), 99)?;
    let silence = TurnConfig::default().silence;
    let mut v2v = Vec::new();
    let mut after_turn = Vec::new();
    for rep in 0..args.reps {
        let model: Arc<dyn ChatModel> = match args.agent {
            AgentKind::Scripted => Arc::new(ScriptedTurns::new(
                "scripted",
                vec![Turn::new({
                    let mut events =
                        text(&["The capital of France is Paris. ", "It lies on the Seine."]);
                    events.push(finish("stop", 10, 12));
                    events
                })],
            )),
            AgentKind::Local => Arc::new(agentbus_local::LocalChatModel::load(
                dir,
                agentbus_local::spec::DEFAULT_MODEL,
            )?),
        };
        let agent = Agent::builder_shared(model)
            .system_prompt("You are a voice assistant. Answer in one short sentence.")
            .max_iterations(1)
            .build();
        let stages = Stages {
            vad: Box::new(SileroVad::load(&models::silero_path(dir)?)?),
            turn: Box::new(SilenceTurnDetector::new(TurnConfig::default())),
            stt: Box::new(whisper.clone()),
            tts: Arc::new(EspeakTts::default()),
            agent,
        };
        let out = scratch.path().join(format!("reply{rep}.wav"));
        let transport = WavFileTransport::open(&question_path, Some(&out))?;
        let pipeline = VoicePipeline::new(
            stages,
            Box::new(transport),
            Emitter::detached("bench"),
            PipelineConfig::default(),
        );
        let report = pipeline.run().await?;
        let exchange = report
            .exchanges
            .first()
            .context("the pipeline heard no question")?;
        let total = exchange
            .voice_to_voice
            .context("the pipeline produced no reply audio")?;
        v2v.push(total.as_secs_f64() * 1000.0);
        after_turn.push(
            total
                .saturating_sub(exchange.trailing_silence)
                .as_secs_f64()
                * 1000.0,
        );
    }

    // The frame pipeline beside Pipecat's, both measured now.
    let (frames_per_s, mut latencies) =
        frame_pipeline(FRAME_STAGES, args.frames, args.paced_frames).await;
    latencies.sort_by(f64::total_cmp);
    // The same on a one-thread runtime: the hops between the tasks are no thread wake-ups.
    let (burst, paced) = (args.frames, args.paced_frames);
    let one_thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(frame_pipeline(FRAME_STAGES, burst, paced)))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the one-thread frame pipeline panicked"))??;
    let (one_thread_per_s, mut one_thread_latencies) = one_thread;
    one_thread_latencies.sort_by(f64::total_cmp);
    let baseline = pipecat(args);

    let window_ms = 32.0;
    Ok(json!({
        "machine": "2 cores, shared with other sessions",
        "vad": {
            "windows": windows,
            "silero_us_per_window": silero_us,
            "silero_share_of_real_time": silero_us / 1000.0 / window_ms,
            "energy_us_per_window": energy_us,
            "energy_share_of_real_time": energy_us / 1000.0 / window_ms,
            "target_share": TARGET_VAD_SHARE,
        },
        "stt": {
            "engine": "whisper-tiny.en (candle, f32)",
            "sentences": sentences.len(),
            "audio_s": audio,
            "real_time_factor": full["real_time_factor"],
            "real_time_factor_median": full["real_time_factor_median"],
            "word_error_rate": full["word_error_rate"],
            "transcripts": full["transcripts"],
            "audio_context_700": trimmed,
            "target_rtf": TARGET_STT_RTF,
            "target_wer": TARGET_WER,
        },
        "tts": {
            "engine": "espeak-ng",
            "ttfb_ms_median": median(&mut ttfbs.clone()),
            "ttfb_ms_p90": percentile(&mut ttfbs, 0.9),
            "real_time_factor_median": median(&mut tts_rtfs),
            "target_ttfb_ms": TARGET_TTS_TTFB_MS,
        },
        "frame_pipeline": {
            "stages": FRAME_STAGES,
            "frames": args.frames,
            "frames_per_s": frames_per_s,
            "paced_frames": args.paced_frames,
            "latency_us_p50": percentile(&mut latencies.clone(), 0.5),
            "latency_us_p99": percentile(&mut latencies, 0.99),
            "one_thread": {
                "frames_per_s": one_thread_per_s,
                "latency_us_p50": percentile(&mut one_thread_latencies.clone(), 0.5),
                "latency_us_p99": percentile(&mut one_thread_latencies, 0.99),
            },
            "pipecat": baseline,
        },
        "voice_to_voice": {
            "agent": format!("{:?}", args.agent).to_lowercase(),
            "runs": args.reps,
            "end_of_turn_silence_ms": silence.as_secs_f64() * 1000.0,
            "median_ms": median(&mut v2v),
            "after_turn_end_median_ms": median(&mut after_turn),
            "target_ms": TARGET_V2V_MS + silence.as_secs_f64() * 1000.0,
        },
    }))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "meets target" } else { "MISSES target" }
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "agentbus bench voice — {}",
        r["machine"].as_str().unwrap_or("")
    );
    let vad = &r["vad"];
    let share = f(&vad["silero_share_of_real_time"]);
    println!(
        "VAD     Silero {:.0} µs per 32 ms window = {:.2} % of real time ({}: ≤ {:.0} %); energy VAD {:.1} µs ({:.3} %); {} windows",
        f(&vad["silero_us_per_window"]),
        share * 100.0,
        verdict(share <= TARGET_VAD_SHARE),
        TARGET_VAD_SHARE * 100.0,
        f(&vad["energy_us_per_window"]),
        f(&vad["energy_share_of_real_time"]) * 100.0,
        vad["windows"]
    );
    let stt = &r["stt"];
    let (rtf, wer) = (f(&stt["real_time_factor"]), f(&stt["word_error_rate"]));
    println!(
        "STT     {} on {} espeak-ng sentences ({:.1} s): real-time factor {:.3} ({}: ≤ {}), WER {:.1} % ({}: ≤ {:.0} %)",
        stt["engine"].as_str().unwrap_or(""),
        stt["sentences"],
        f(&stt["audio_s"]),
        rtf,
        verdict(rtf <= TARGET_STT_RTF),
        TARGET_STT_RTF,
        wer * 100.0,
        verdict(wer <= TARGET_WER),
        TARGET_WER * 100.0
    );
    let trimmed = &stt["audio_context_700"];
    println!(
        "        with_audio_context(700) (the audio and 7 s of padding, not 30 s): real-time factor {:.3}, WER {:.1} %",
        f(&trimmed["real_time_factor"]),
        f(&trimmed["word_error_rate"]) * 100.0
    );
    let tts = &r["tts"];
    let ttfb = f(&tts["ttfb_ms_median"]);
    println!(
        "TTS     espeak-ng: first audio {:.1} ms median, {:.1} ms p90 ({}: ≤ {:.0} ms); real-time factor {:.3}",
        ttfb,
        f(&tts["ttfb_ms_p90"]),
        verdict(ttfb <= TARGET_TTS_TTFB_MS),
        TARGET_TTS_TTFB_MS,
        f(&tts["real_time_factor_median"])
    );
    let p = &r["frame_pipeline"];
    let ours = f(&p["frames_per_s"]);
    let peer = &p["pipecat"];
    let beside = if peer["available"] == true {
        let theirs = f(&peer["frames_per_s"]);
        format!(
            "; Pipecat {} (same shape, this run): {:.0} frames/s, p50/p99 {:.0}/{:.0} µs → {:.0}× its frames/s ({}: ≥ 100×)",
            peer["version"].as_str().unwrap_or("?"),
            theirs,
            f(&peer["latency_us_p50"]),
            f(&peer["latency_us_p99"]),
            ours / theirs,
            verdict(ours / theirs >= 100.0)
        )
    } else {
        format!(
            "; Pipecat not measured ({})",
            peer["reason"].as_str().unwrap_or("unavailable")
        )
    };
    let one = &p["one_thread"];
    println!(
        "FRAMES  {} pass-through stages, 20 ms 16 kHz frames: {:.0} frames/s in a burst, p50/p99 {:.1}/{:.1} µs paced at 1/ms (p99 {}: ≤ 100 µs); on a one-thread runtime {:.0} frames/s, p50/p99 {:.1}/{:.1} µs{beside}",
        p["stages"],
        ours,
        f(&p["latency_us_p50"]),
        f(&p["latency_us_p99"]),
        verdict(f(&p["latency_us_p99"]) <= 100.0),
        f(&one["frames_per_s"]),
        f(&one["latency_us_p50"]),
        f(&one["latency_us_p99"]),
    );
    let v = &r["voice_to_voice"];
    let median_ms = f(&v["median_ms"]);
    println!(
        "V2V     {} agent, {} runs: {:.0} ms median from end of speech to first reply audio, of which {:.0} ms end-of-turn silence and {:.0} ms after the turn ended ({}: ≤ {:.0} ms)",
        v["agent"].as_str().unwrap_or(""),
        v["runs"],
        median_ms,
        f(&v["end_of_turn_silence_ms"]),
        f(&v["after_turn_end_median_ms"]),
        verdict(median_ms <= f(&v["target_ms"])),
        f(&v["target_ms"])
    );
}
