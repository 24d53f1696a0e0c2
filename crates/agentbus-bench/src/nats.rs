//! `agentbus bench nats`: the NATS bridge beside raw async-nats on the same server, in the
//! same run (a `nats-server -js` of its own in a temporary directory unless `--nats URL`).
//!
//! - **export**: events/s from `send` on a bus to every JetStream ack (the exporter:
//!   encode, subject, `Nats-Msg-Id`, 256 acks in flight) vs raw JetStream publishes of the
//!   same bytes with the same header and window. Target ≥ 70 %.
//! - **latency**: `send` in one process (a child `agentbus-bench nats-producer`) to the
//!   handler in this one, at `--rate` events/s, p50/p99, vs a raw publish in the child and
//!   a raw ordered consumer here. Target: p50 added ≤ 20 %.
//! - **store writer**: events/s from the stream into SQLite (durable consumer, batch
//!   transaction, idempotent append, ack after commit) vs `bench store`'s direct append
//!   of the same events (the store's batching writer). Target ≥ 50 %.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentbus::EventManager;
use agentbus_events::llm::LLMResponseChunkEvent;
use agentbus_events::{DynEvent, EventMeta, Registry};
use agentbus_nats::server::LocalServer;
use agentbus_nats::{Bridge, DurableOptions, ExportOptions, NatsOptions, StartAt};
use agentbus_store::{EventStore, WriterOptions};
use anyhow::Context;

use crate::stats::{median, percentile};
use futures::StreamExt;

/// The header the raw baseline carries its send time in (µs since the epoch).
const SENT_HEADER: &str = "Bench-Sent-Us";
/// Acks in flight, for the exporter and the raw baseline alike.
const WINDOW: usize = 256;

/// Arguments of `agentbus bench nats`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A NATS server with JetStream (default: start one in a temporary directory).
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// Events per export and store-writer run.
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    /// Events per latency run.
    #[arg(long, default_value_t = 3_000)]
    pub latency_events: usize,
    /// Send rate of the latency runs, events/s.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u64,
    /// Repetitions; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `agentbus bench nats-producer` (the other process of the latency runs,
/// and a load generator for tests): sends `--count` events of `--session` through a bus
/// exported to NATS (or, with `--raw`, raw JetStream publishes).
#[derive(Debug, clap::Args)]
pub struct ProducerArgs {
    /// The NATS server.
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// Events to send.
    #[arg(long)]
    pub count: usize,
    /// Their session.
    #[arg(long, default_value = "bench")]
    pub session: String,
    /// Events per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Publish raw bytes with async-nats instead of going through a bus.
    #[arg(long)]
    pub raw: bool,
    /// Write the event ids sent to this file, one per line.
    #[arg(long, value_name = "FILE")]
    pub ids: Option<PathBuf>,
    /// Wait this many milliseconds before sending (lets a consumer start).
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
}

fn chunk(session: &str, i: usize) -> LLMResponseChunkEvent {
    LLMResponseChunkEvent {
        meta: EventMeta::for_session(session),
        delta: Some(format!("{i} lorem ipsum dolor sit amet, consectetur")),
        item_id: Some(format!("item-{}", i / 100)),
        ..Default::default()
    }
}

fn options(url: &str) -> NatsOptions {
    NatsOptions::new(url).name("agentbus-bench")
}

/// Sleeps until `start + i / rate` (no-op at rate 0).
async fn pace(start: Instant, i: usize, rate: u64) {
    if rate > 0 {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Runs `agentbus bench nats-producer`.
pub fn run_producer(args: ProducerArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let bridge = Bridge::connect(&options(&args.nats)).await?;
        tokio::time::sleep(Duration::from_millis(args.delay_ms)).await;
        let mut ids = Vec::with_capacity(if args.ids.is_some() { args.count } else { 0 });
        let start = Instant::now();
        if args.raw {
            let js = bridge.jetstream().clone();
            let subject = agentbus_nats::subject::event_subject(
                Some(&args.session),
                <LLMResponseChunkEvent as agentbus_events::Event>::TYPE,
            );
            let mut window = RawWindow::default();
            for i in 0..args.count {
                pace(start, i, args.rate).await;
                let event = chunk(&args.session, i);
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", event.meta.event_id.to_string().as_str());
                headers.insert(SENT_HEADER, now_us().to_string().as_str());
                let body = agentbus_events::wire::to_string(&event)?;
                window.publish(&js, &subject, headers, body.into()).await?;
            }
            window.drain().await?;
        } else {
            let bus = EventManager::new();
            let exporter = bridge.export(&bus, ExportOptions::default())?;
            for i in 0..args.count {
                pace(start, i, args.rate).await;
                let event = chunk(&args.session, i);
                if args.ids.is_some() {
                    ids.push(event.meta.event_id);
                }
                bus.send(event).await?;
            }
            exporter.close(Duration::from_secs(120)).await?;
        }
        if let Some(path) = &args.ids {
            let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// Export: the bridge from `send` to the last ack, events/s.
async fn export_rate(bridge: &Bridge, n: usize, rep: usize) -> anyhow::Result<f64> {
    let bus = EventManager::new();
    let exporter = bridge.export(&bus, ExportOptions::default())?;
    let session = format!("export-{rep}");
    let events: Vec<_> = (0..n).map(|i| chunk(&session, i)).collect();
    let start = Instant::now();
    for event in events {
        bus.send(event).await?;
    }
    let stats = exporter.close(Duration::from_secs(120)).await?;
    let elapsed = start.elapsed();
    anyhow::ensure!(
        stats.acked == n as u64,
        "only {} of {n} exported",
        stats.acked
    );
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// Baseline: raw JetStream publishes of the same bytes, same header, same window.
async fn raw_publish_rate(bridge: &Bridge, n: usize, rep: usize) -> anyhow::Result<f64> {
    let js = bridge.jetstream();
    let session = format!("raw-{rep}");
    let subject = agentbus_nats::subject::event_subject(
        Some(&session),
        <LLMResponseChunkEvent as agentbus_events::Event>::TYPE,
    );
    let messages: Vec<(String, bytes::Bytes)> = (0..n)
        .map(|i| {
            let event = chunk(&session, i);
            let body = agentbus_events::wire::to_string(&event).expect("a chunk encodes");
            (event.meta.event_id.to_string(), bytes::Bytes::from(body))
        })
        .collect();
    let start = Instant::now();
    let mut window = RawWindow::default();
    for (id, body) in messages {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        window.publish(js, &subject, headers, body).await?;
    }
    window.drain().await?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// The raw baseline's pipelining: up to [`WINDOW`] JetStream publishes awaiting their
/// acknowledgement, the oldest awaited first (as the exporter does).
#[derive(Default)]
struct RawWindow {
    acks: VecDeque<async_nats::jetstream::context::PublishAckFuture>,
}

impl RawWindow {
    async fn publish(
        &mut self,
        js: &async_nats::jetstream::Context,
        subject: &str,
        headers: async_nats::HeaderMap,
        body: bytes::Bytes,
    ) -> anyhow::Result<()> {
        self.acks.push_back(
            js.publish_with_headers(subject.to_owned(), headers, body)
                .await?,
        );
        if self.acks.len() >= WINDOW
            && let Some(ack) = self.acks.pop_front()
        {
            ack.await?;
        }
        Ok(())
    }

    async fn drain(self) -> anyhow::Result<()> {
        for ack in self.acks {
            ack.await?;
        }
        Ok(())
    }
}

fn spawn_producer(
    url: &str,
    count: usize,
    rate: u64,
    session: &str,
    raw: bool,
) -> anyhow::Result<std::process::Child> {
    let exe = std::env::current_exe().context("finding the agentbus-bench binary")?;
    let mut command = Command::new(exe);
    command
        .args(["nats-producer", "--nats", url, "--session", session])
        .args(["--count", &count.to_string(), "--rate", &rate.to_string()])
        .args(["--delay-ms", "300"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if raw {
        command.arg("--raw");
    }
    command.spawn().context("starting the producer process")
}

/// Latencies (µs) from `send` in a child process to the handler on a bus here.
async fn bridge_latency(
    bridge: &Bridge,
    url: &str,
    n: usize,
    rate: u64,
    rep: usize,
) -> anyhow::Result<Vec<f64>> {
    let session = format!("latency-{rep}");
    let bus = EventManager::new();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let sink = latencies.clone();
    bus.subscribe("latency", move |e: Arc<LLMResponseChunkEvent>| {
        let sink = sink.clone();
        async move {
            let sent = e.meta.timestamp.timestamp_micros();
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((now_us() - sent) as f64);
        }
    })?;
    let _import = bridge
        .import_live(&bus, Some(&session), None, StartAt::New)
        .await?;
    let mut child = spawn_producer(url, n, rate, &session, false)?;
    wait_for(&latencies, n, &mut child).await?;
    let values = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(values)
}

/// Baseline latencies: raw publish in a child, raw ordered consumer here.
async fn raw_latency(
    bridge: &Bridge,
    url: &str,
    n: usize,
    rate: u64,
    rep: usize,
) -> anyhow::Result<Vec<f64>> {
    let session = format!("raw-latency-{rep}");
    let stream = bridge
        .jetstream()
        .get_stream(agentbus_nats::DEFAULT_STREAM)
        .await?;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: agentbus_nats::subject::filter_subject(Some(&session), None),
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let sink = latencies.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            let sent = message
                .headers
                .as_ref()
                .and_then(|h| h.get(SENT_HEADER))
                .and_then(|v| v.as_str().parse::<i64>().ok());
            if let Some(sent) = sent {
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((now_us() - sent) as f64);
            }
        }
    });
    let mut child = spawn_producer(url, n, rate, &session, true)?;
    let result = wait_for(&latencies, n, &mut child).await;
    reader.abort();
    result?;
    let values = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(values)
}

async fn wait_for(
    latencies: &Mutex<Vec<f64>>,
    n: usize,
    child: &mut std::process::Child,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60 + n as u64 / 100);
    while latencies.lock().unwrap_or_else(|p| p.into_inner()).len() < n {
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("latency run: events missing after the deadline");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "the producer process failed: {status}");
    Ok(())
}

/// The store writer's path: durable consumer → batch transaction → ack, events/s; and the
/// direct append of the same events into a fresh store.
async fn store_rates(
    bridge: &Bridge,
    n: usize,
    rep: usize,
    dir: &std::path::Path,
) -> anyhow::Result<(f64, f64)> {
    let session = format!("store-{rep}");
    let events: Vec<Box<dyn DynEvent>> = (0..n)
        .map(|i| Box::new(chunk(&session, i)) as Box<dyn DynEvent>)
        .collect();
    // Into the stream first (untimed).
    let bus = EventManager::new();
    let exporter = bridge.export(&bus, ExportOptions::default())?;
    for event in &events {
        bus.send(event.clone_box()).await?;
    }
    exporter.close(Duration::from_secs(120)).await?;

    let via_nats = Arc::new(EventStore::open(&format!(
        "sqlite://{}/nats-{rep}.db",
        dir.display()
    ))?);
    let mut options = DurableOptions::new(format!("bench-store-{rep}"));
    options.filter_subject = agentbus_nats::subject::filter_subject(Some(&session), None);
    // As `agentbus store-writer` sets it for its default batch.
    options.max_ack_pending = agentbus_nats::store::max_ack_pending_for(1000);
    let consumer = std::sync::Arc::new(bridge.durable(Registry::catalogue(), options).await?);
    let mut write = agentbus_nats::store::WriteOptions::default();
    write.max_events = Some(n as u64);
    write.exit_when_idle = Some(Duration::from_secs(2));
    let start = Instant::now();
    let totals =
        agentbus_nats::store::write_all(consumer, via_nats, write, std::future::pending()).await;
    anyhow::ensure!(
        totals.written == n as u64,
        "store writer: wrote {} of {n}",
        totals.written
    );
    let nats_rate = n as f64 / start.elapsed().as_secs_f64();

    let direct = EventStore::open(&format!("sqlite://{}/direct-{rep}.db", dir.display()))?;
    let start = Instant::now();
    let appended = tokio::task::spawn_blocking(move || {
        let writer = direct.writer(WriterOptions::default())?;
        for event in &events {
            writer.append_blocking(event.as_ref())?;
        }
        writer.close_blocking()
    })
    .await??;
    anyhow::ensure!(
        appended.written == n as u64,
        "direct append wrote {}",
        appended.written
    );
    let direct_rate = n as f64 / start.elapsed().as_secs_f64();
    Ok((nats_rate, direct_rate))
}

/// Runs `agentbus bench nats`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::Builder::new()
        .prefix("agentbus-bench-nats-")
        .tempdir()
        .context("creating a scratch directory")?;
    let dir = scratch.path().to_path_buf();
    let _server;
    let url = match &args.nats {
        Some(url) => url.clone(),
        None => {
            let server = LocalServer::start(&dir.join("nats"))?;
            let url = server.url();
            _server = server;
            url
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let reps = args.reps.max(1);
    let result = runtime.block_on(async {
        let bridge = Bridge::connect(&options(&url)).await?;
        let (mut export, mut raw) = (Vec::new(), Vec::new());
        let (mut lat, mut raw_lat) = (Vec::new(), Vec::new());
        let (mut store, mut direct) = (Vec::new(), Vec::new());
        for rep in 0..reps {
            eprintln!("run {} of {reps}", rep + 1);
            // Alternate which goes first, so neither always meets a warmer server.
            if rep % 2 == 0 {
                raw.push(raw_publish_rate(&bridge, args.events, rep).await?);
                export.push(export_rate(&bridge, args.events, rep).await?);
            } else {
                export.push(export_rate(&bridge, args.events, rep).await?);
                raw.push(raw_publish_rate(&bridge, args.events, rep).await?);
            }
            raw_lat.extend(raw_latency(&bridge, &url, args.latency_events, args.rate, rep).await?);
            lat.extend(bridge_latency(&bridge, &url, args.latency_events, args.rate, rep).await?);
            let (s, d) = store_rates(&bridge, args.events, rep, &dir).await?;
            store.push(s);
            direct.push(d);
        }
        lat.sort_by(f64::total_cmp);
        raw_lat.sort_by(f64::total_cmp);
        let p = |v: &mut Vec<f64>, q: f64| percentile(v, q / 100.0);
        anyhow::Ok(serde_json::json!({
            "events": args.events,
            "reps": reps,
            "export_events_per_s": median(export),
            "raw_publish_events_per_s": median(raw),
            "latency_rate_per_s": args.rate,
            "latency_us": {"p50": p(&mut lat, 50.0), "p99": p(&mut lat, 99.0)},
            "raw_latency_us": {"p50": p(&mut raw_lat, 50.0), "p99": p(&mut raw_lat, 99.0)},
            "store_writer_events_per_s": median(store),
            "direct_append_events_per_s": median(direct),
        }))
    });
    let out = result?;
    let f = |k: &str| out[k].as_f64().unwrap_or(f64::NAN);
    let export_ratio = f("export_events_per_s") / f("raw_publish_events_per_s");
    let lat50 = out["latency_us"]["p50"].as_f64().unwrap_or(f64::NAN);
    let raw50 = out["raw_latency_us"]["p50"].as_f64().unwrap_or(f64::NAN);
    let added = lat50 / raw50 - 1.0;
    let store_ratio = f("store_writer_events_per_s") / f("direct_append_events_per_s");
    if args.json {
        let mut out = out;
        out["export_ratio"] = export_ratio.into();
        out["latency_p50_added"] = added.into();
        out["store_ratio"] = store_ratio.into();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "agentbus bench nats — {} events per throughput run, {} per latency run at {}/s, medians of {reps} runs",
        args.events, args.latency_events, args.rate
    );
    println!(
        "export        {:>10.0} events/s   raw JetStream publish {:>10.0} events/s   ratio {:.2} (target ≥ 0.70)",
        f("export_events_per_s"),
        f("raw_publish_events_per_s"),
        export_ratio
    );
    println!(
        "latency p50   {:>10.0} µs         raw publish→consume  {:>10.0} µs         added {:+.0}% (target ≤ +20%)",
        lat50,
        raw50,
        added * 100.0
    );
    println!(
        "latency p99   {:>10.0} µs         raw publish→consume  {:>10.0} µs",
        out["latency_us"]["p99"].as_f64().unwrap_or(f64::NAN),
        out["raw_latency_us"]["p99"].as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "store writer  {:>10.0} events/s   direct append        {:>10.0} events/s   ratio {:.2} (target ≥ 0.50)",
        f("store_writer_events_per_s"),
        f("direct_append_events_per_s"),
        store_ratio
    );
    Ok(ExitCode::SUCCESS)
}
