//! `agentbus bench bus`: the event bus against a plain tokio mpsc channel per subscriber
//! (the raw ceiling of a queue-plus-consumer-task design) in the same run, and against
//! Vision Agents' `EventManager` when it is installed.
//!
//! Measures, each as the median of `--reps` repetitions:
//! - `calls_per_s` with 1, 10 and 100 subscribers of one type whose async handlers count:
//!   `--events` handler calls in total per run (so N=1 sends `--events` events, N=100
//!   sends `--events / 100`); sent from a plain thread (no runtime on it) into a runtime
//!   with one worker thread (the machine has two cores: one sends, one handles);
//!   capacity 8192, `Block` policy (the sender is parked when a queue is full — the
//!   baseline uses `blocking_send`, the same backpressure);
//! - `latency_us` p50/p99/max from just before `send` to the handler's first line, at
//!   a paced 10,000 events/s, N=1; then again with the consumer spinning 200 µs before
//!   parking (`SubscribeOptions::spin`), which removes the operating system's wake-up
//!   from the path at the cost of a busy core;
//! - `latency_us_sender_task_current_thread` / `_multi_thread`: the same paced latency
//!   when the sender is a task on the subscribers' runtime (a current-thread runtime; a
//!   multi-thread one with two workers), which is what users of an async framework have:
//!   the task `send(..).await`s, then yields as it would at its next await; the tokio
//!   mpsc baseline does the same with `tx.send(..).await`. Vision Agents' sender and
//!   handlers always share one asyncio loop, so its one latency figure is the peer of
//!   these;
//! - Vision Agents (`bench/vision_agents_bus.py`, run with `--python`, default `python3`,
//!   when `import vision_agents` works there): the same figures with at most 100,000
//!   calls per run and 3 repetitions (it is ~300 times slower), and our ratio to it;
//! - `bytes_per_pending`: measured by a counting global allocator (enabled only during
//!   this measurement): the heap growth while `--pending` events are queued behind a
//!   stalled handler, divided by their number. It includes the event itself (one `Arc`,
//!   `event_bytes`); `queue_bytes_per_pending` is the rest (queue slots).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use agentbus::{EventManager, SubscribeOptions};
use agentbus_events::define_event;
use anyhow::Context;
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, mpsc};

/// Arguments of `agentbus bench bus`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  agentbus bench bus
  agentbus bench bus --reps 3 --events 200000 --json
  agentbus bench bus --python .venv/bin/python")]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Handler calls per throughput run (at N=1: events in the burst).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Events in each paced latency run (sent at 10,000/s).
    #[arg(long, default_value_t = 5_000)]
    pub paced_events: u64,
    /// Events queued behind a stalled handler for the memory measurement.
    #[arg(long, default_value_t = 100_000)]
    pub pending: u64,
    /// Repetitions; medians are reported.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Do not run the Vision Agents benchmark even if `vision_agents` is importable.
    #[arg(long)]
    pub no_python: bool,
    /// The Python interpreter for the Vision Agents benchmark (e.g. a venv's python).
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// The Vision Agents benchmark script (default: the copy of
    /// `bench/vision_agents_bus.py` built into this binary).
    #[arg(long)]
    pub script: Option<PathBuf>,
}

/// `bench/vision_agents_bus.py`, built in so the binary runs it from anywhere.
const VISION_AGENTS_SCRIPT: &str = include_str!("../../../bench/vision_agents_bus.py");

define_event! {
    /// The benchmark's event: the base fields and a counter.
    #[event(type = "bench.tick", domain = Plugin, base = event)]
    pub struct Tick {
        /// The event's index in its run.
        pub n: u64,
    }
}

const CAPACITY: usize = 8192;
const SUBSCRIBERS: [usize; 3] = [1, 10, 100];
const PACED_RATE: f64 = 10_000.0;
/// How long before each paced send the sender stops sleeping and spins (sleeps overshoot
/// by tens of microseconds).
const PACED_SPIN: Duration = Duration::from_micros(60);
/// The consumer's spin before parking in the second latency run: longer than the paced
/// interval (100 µs), so the consumer never parks and no delivery waits for a wake-up.
const LATENCY_SPIN: Duration = Duration::from_micros(200);

use crate::alloc::{COUNTING, live_bytes};
use crate::python::peer_command;
use crate::stats::{median, percentile, round3};

// ---- figures -----------------------------------------------------------------------------

/// The figures of one implementation.
#[derive(Clone, Debug, Default)]
struct Figures {
    /// Median handler calls per second, per subscriber count.
    calls_per_s: Vec<(usize, f64)>,
    /// Median p50, p99, max latency in microseconds.
    latency_us: [f64; 3],
    /// The same with the consumer spinning [`LATENCY_SPIN`] before parking (ours only).
    latency_spin_us: Option<[f64; 3]>,
    /// Heap bytes per pending delivery, event included.
    bytes_per_pending: f64,
    /// Median p50, p99, max latency with the sender a task on the subscribers' runtime:
    /// current-thread, then multi-thread.
    latency_in_runtime_us: Option<[[f64; 3]; 2]>,
}

impl Figures {
    fn to_json(&self) -> Value {
        let calls: serde_json::Map<String, Value> = self
            .calls_per_s
            .iter()
            .map(|(n, c)| (n.to_string(), json!(c.round())))
            .collect();
        let mut figures = json!({
            "calls_per_s": calls,
            "latency_us": {"p50": self.latency_us[0], "p99": self.latency_us[1], "max": self.latency_us[2]},
            "bytes_per_pending": self.bytes_per_pending,
        });
        if let Some(l) = self.latency_spin_us {
            figures["latency_us_spinning"] = json!({"p50": l[0], "p99": l[1], "max": l[2]});
        }
        if let Some([ct, mt]) = self.latency_in_runtime_us {
            figures["latency_us_sender_task_current_thread"] =
                json!({"p50": ct[0], "p99": ct[1], "max": ct[2]});
            figures["latency_us_sender_task_multi_thread"] =
                json!({"p50": mt[0], "p99": mt[1], "max": mt[2]});
        }
        figures
    }
}

fn tick(template: &Tick, n: u64) -> Tick {
    // Cloning a template keeps event construction (UUID, clock) out of the measurement.
    let mut event = template.clone();
    event.n = n;
    event
}

fn wait_for(counters: &[Arc<AtomicU64>], expected: u64) {
    while counters.iter().map(|c| c.load(Relaxed)).sum::<u64>() < expected {
        std::thread::sleep(Duration::from_micros(20));
    }
}

fn new_bus(rt: &Runtime) -> anyhow::Result<EventManager> {
    let bus = EventManager::builder()
        .handle(rt.handle().clone())
        .without_catalogue()
        .build()?;
    bus.register::<Tick>()?;
    Ok(bus)
}

// ---- agentbus ----------------------------------------------------------------------------

fn burst_agentbus(rt: &Runtime, subscribers: usize, calls: u64) -> anyhow::Result<f64> {
    let bus = new_bus(rt)?;
    let counters: Vec<Arc<AtomicU64>> = (0..subscribers)
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    for (i, counter) in counters.iter().enumerate() {
        let counter = Arc::clone(counter);
        bus.subscribe_with(
            format!("count-{i}"),
            SubscribeOptions::new().capacity(CAPACITY),
            move |_: Arc<Tick>| {
                counter.fetch_add(1, Relaxed);
                async {}
            },
        )?;
    }
    let sends = calls / subscribers as u64;
    let template = Tick::default();
    let start = Instant::now();
    for n in 0..sends {
        bus.blocking_send(tick(&template, n))?;
    }
    wait_for(&counters, sends * subscribers as u64);
    let elapsed = start.elapsed();
    let _report = rt.block_on(bus.shutdown(Duration::from_secs(5)));
    Ok((sends * subscribers as u64) as f64 / elapsed.as_secs_f64())
}

/// Paced sends; returns each event's latency in microseconds, sorted.
fn paced(
    events: u64,
    mut send: impl FnMut(u64) -> anyhow::Result<()>,
    received: &[AtomicU64],
    base: Instant,
) -> anyhow::Result<Vec<f64>> {
    let interval = Duration::from_secs_f64(1.0 / PACED_RATE);
    let mut sent = Vec::with_capacity(events as usize);
    let mut next = Instant::now();
    for n in 0..events {
        // Sleep through most of the interval and spin only the last stretch, so the
        // sending thread leaves its core to the rest of the machine (a sender spinning
        // all the time shares the two cores with the consumer and every other process,
        // which shows up as preemptions in the tail).
        let now = Instant::now();
        if next > now + PACED_SPIN {
            std::thread::sleep(next - now - PACED_SPIN);
        }
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        next += interval;
        sent.push(base.elapsed().as_nanos() as u64);
        send(n)?;
    }
    while received.iter().any(|r| r.load(Relaxed) == 0) {
        std::thread::sleep(Duration::from_micros(100));
    }
    let mut latencies: Vec<f64> = received
        .iter()
        .zip(&sent)
        .map(|(r, s)| r.load(Relaxed).saturating_sub(*s) as f64 / 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// Paced latency with the default options, or with the consumer spinning `spin` before
/// it parks.
fn latency_agentbus(rt: &Runtime, events: u64, spin: Option<Duration>) -> anyhow::Result<Vec<f64>> {
    let bus = new_bus(rt)?;
    let base = Instant::now();
    let received: Arc<Vec<AtomicU64>> = Arc::new((0..events).map(|_| AtomicU64::new(0)).collect());
    let r = Arc::clone(&received);
    let mut options = SubscribeOptions::new();
    if let Some(spin) = spin {
        options = options.spin(spin);
    }
    bus.subscribe_with("latency", options, move |e: Arc<Tick>| {
        r[e.n as usize].store(base.elapsed().as_nanos().max(1) as u64, Relaxed);
        async {}
    })?;
    let template = Tick::default();
    let latencies = paced(
        events,
        |n| Ok(bus.blocking_send(tick(&template, n)).map(drop)?),
        &received,
        base,
    )?;
    let _report = rt.block_on(bus.shutdown(Duration::from_secs(5)));
    Ok(latencies)
}

/// Sleeps (leaving the core) until shortly before `next`, then yields to the runtime until
/// `next`: the pacing of a sender task, so that other tasks run in the last stretch.
async fn pace_task(next: Instant) {
    let now = Instant::now();
    if next > now + PACED_SPIN {
        // Blocks this worker, but only while every other task is idle: the sender
        // yielded after its last send, so the consumer has already run.
        std::thread::sleep(next - now - PACED_SPIN);
    }
    while Instant::now() < next {
        tokio::task::yield_now().await;
    }
}

/// Which runtime an in-runtime latency run uses.
#[derive(Clone, Copy, Debug)]
enum Flavor {
    /// `new_current_thread`: the sender task and the consumers share one thread.
    CurrentThread,
    /// `new_multi_thread` with two workers (the machine's cores).
    MultiThread,
}

impl Flavor {
    fn runtime(self) -> anyhow::Result<Runtime> {
        let mut builder = match self {
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Flavor::MultiThread => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(2);
                b
            }
        };
        Ok(builder.enable_all().build()?)
    }
}

/// Paced latency when the sender is a task on the subscribers' runtime (what users of an
/// async framework have): the task sends with `send(..).await`, then yields, as a task
/// does at its next await. Latencies in microseconds, sorted.
fn latency_in_runtime_agentbus(flavor: Flavor, events: u64) -> anyhow::Result<Vec<f64>> {
    let rt = flavor.runtime()?;
    let base = Instant::now();
    let received: Arc<Vec<AtomicU64>> = Arc::new((0..events).map(|_| AtomicU64::new(0)).collect());
    let bus = new_bus(&rt)?;
    let r = Arc::clone(&received);
    bus.subscribe_with("latency", SubscribeOptions::new(), move |e: Arc<Tick>| {
        r[e.n as usize].store(base.elapsed().as_nanos().max(1) as u64, Relaxed);
        async {}
    })?;
    let sender = bus.clone();
    let sent = rt.block_on(async move {
        tokio::spawn(async move {
            let template = Tick::default();
            let interval = Duration::from_secs_f64(1.0 / PACED_RATE);
            let mut sent = Vec::with_capacity(events as usize);
            let mut next = Instant::now();
            for n in 0..events {
                pace_task(next).await;
                next += interval;
                sent.push(base.elapsed().as_nanos() as u64);
                sender.send(tick(&template, n)).await?;
                tokio::task::yield_now().await;
            }
            anyhow::Ok(sent)
        })
        .await
    })??;
    let latencies = collect_latencies(&rt, &received, &sent);
    let _report = rt.block_on(bus.shutdown(Duration::from_secs(5)));
    Ok(latencies)
}

/// The same with a tokio mpsc channel and a receiving task.
fn latency_in_runtime_mpsc(flavor: Flavor, events: u64) -> anyhow::Result<Vec<f64>> {
    let rt = flavor.runtime()?;
    let base = Instant::now();
    let received: Arc<Vec<AtomicU64>> = Arc::new((0..events).map(|_| AtomicU64::new(0)).collect());
    let (tx, mut rx) = mpsc::channel::<Arc<Tick>>(CAPACITY);
    let r = Arc::clone(&received);
    rt.spawn(async move {
        while let Some(e) = rx.recv().await {
            r[e.n as usize].store(base.elapsed().as_nanos().max(1) as u64, Relaxed);
        }
    });
    let sent = rt.block_on(async move {
        tokio::spawn(async move {
            let template = Tick::default();
            let interval = Duration::from_secs_f64(1.0 / PACED_RATE);
            let mut sent = Vec::with_capacity(events as usize);
            let mut next = Instant::now();
            for n in 0..events {
                pace_task(next).await;
                next += interval;
                sent.push(base.elapsed().as_nanos() as u64);
                tx.send(Arc::new(tick(&template, n)))
                    .await
                    .context("baseline consumer gone")?;
                tokio::task::yield_now().await;
            }
            anyhow::Ok(sent)
        })
        .await
    })??;
    Ok(collect_latencies(&rt, &received, &sent))
}

/// Waits (on the runtime) until every event was received; their latencies, sorted.
fn collect_latencies(rt: &Runtime, received: &[AtomicU64], sent: &[u64]) -> Vec<f64> {
    rt.block_on(async {
        while received.iter().any(|r| r.load(Relaxed) == 0) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let mut latencies: Vec<f64> = received
        .iter()
        .zip(sent)
        .map(|(r, s)| r.load(Relaxed).saturating_sub(*s) as f64 / 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies
}

fn memory_agentbus(rt: &Runtime, pending: u64) -> anyhow::Result<f64> {
    let bus = new_bus(rt)?;
    let gate = Arc::new(Notify::new());
    let entered = Arc::new(AtomicBool::new(false));
    let (g, e) = (Arc::clone(&gate), Arc::clone(&entered));
    bus.subscribe_with(
        "stalled",
        SubscribeOptions::new().capacity(pending as usize + 1),
        move |_: Arc<Tick>| {
            let (g, e) = (Arc::clone(&g), Arc::clone(&e));
            async move {
                e.store(true, SeqCst);
                g.notified().await;
            }
        },
    )?;
    let template = Tick::default();
    bus.blocking_send(tick(&template, 0))?;
    while !entered.load(SeqCst) {
        std::thread::sleep(Duration::from_micros(50));
    }
    let events: Vec<Tick> = (1..=pending).map(|n| tick(&template, n)).collect();
    COUNTING.store(true, SeqCst);
    let before = live_bytes();
    // The iterator keeps the pre-built events' buffer alive until after the count.
    let mut events = events.into_iter();
    for event in events.by_ref() {
        bus.blocking_send(event)?;
    }
    let after = live_bytes();
    COUNTING.store(false, SeqCst);
    drop(events);
    gate.notify_one();
    let _report = rt.block_on(bus.shutdown(Duration::from_secs(1)));
    Ok((after - before) as f64 / pending as f64)
}

// ---- baseline: tokio mpsc per subscriber ---------------------------------------------------

fn burst_mpsc(rt: &Runtime, subscribers: usize, calls: u64) -> anyhow::Result<f64> {
    let counters: Vec<Arc<AtomicU64>> = (0..subscribers)
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let mut senders = Vec::with_capacity(subscribers);
    for counter in &counters {
        let (tx, mut rx) = mpsc::channel::<Arc<Tick>>(CAPACITY);
        let counter = Arc::clone(counter);
        rt.spawn(async move {
            while let Some(_event) = rx.recv().await {
                counter.fetch_add(1, Relaxed);
            }
        });
        senders.push(tx);
    }
    let sends = calls / subscribers as u64;
    let template = Tick::default();
    let start = Instant::now();
    for n in 0..sends {
        let event = Arc::new(tick(&template, n));
        for tx in &senders {
            tx.blocking_send(Arc::clone(&event))
                .context("baseline consumer gone")?;
        }
    }
    wait_for(&counters, sends * subscribers as u64);
    Ok((sends * subscribers as u64) as f64 / start.elapsed().as_secs_f64())
}

fn latency_mpsc(rt: &Runtime, events: u64) -> anyhow::Result<Vec<f64>> {
    let base = Instant::now();
    let received: Arc<Vec<AtomicU64>> = Arc::new((0..events).map(|_| AtomicU64::new(0)).collect());
    let (tx, mut rx) = mpsc::channel::<Arc<Tick>>(CAPACITY);
    let r = Arc::clone(&received);
    rt.spawn(async move {
        while let Some(e) = rx.recv().await {
            r[e.n as usize].store(base.elapsed().as_nanos().max(1) as u64, Relaxed);
        }
    });
    let template = Tick::default();
    paced(
        events,
        |n| {
            tx.blocking_send(Arc::new(tick(&template, n)))
                .context("baseline consumer gone")
        },
        &received,
        base,
    )
}

fn memory_mpsc(rt: &Runtime, pending: u64) -> anyhow::Result<f64> {
    let gate = Arc::new(Notify::new());
    let entered = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::channel::<Arc<Tick>>(pending as usize + 1);
    let (g, e) = (Arc::clone(&gate), Arc::clone(&entered));
    rt.spawn(async move {
        while let Some(_event) = rx.recv().await {
            e.store(true, SeqCst);
            g.notified().await;
        }
    });
    let template = Tick::default();
    tx.blocking_send(Arc::new(tick(&template, 0)))?;
    while !entered.load(SeqCst) {
        std::thread::sleep(Duration::from_micros(50));
    }
    let events: Vec<Tick> = (1..=pending).map(|n| tick(&template, n)).collect();
    COUNTING.store(true, SeqCst);
    let before = live_bytes();
    let mut events = events.into_iter();
    for event in events.by_ref() {
        tx.blocking_send(Arc::new(event))?;
    }
    let after = live_bytes();
    COUNTING.store(false, SeqCst);
    drop(events);
    drop(tx);
    gate.notify_one();
    Ok((after - before) as f64 / pending as f64)
}

// ---- the run -------------------------------------------------------------------------------

fn measure(args: &Args) -> anyhow::Result<(Figures, Figures)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let reps = args.reps.max(1);
    let mut ours = Figures::default();
    let mut base = Figures::default();
    for &n in &SUBSCRIBERS {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            // Alternate so drift (thermal, other load) hits both alike.
            a.push(burst_agentbus(&rt, n, args.events)?);
            b.push(burst_mpsc(&rt, n, args.events)?);
        }
        ours.calls_per_s.push((n, median(a)));
        base.calls_per_s.push((n, median(b)));
    }
    // p50, p99, max of each repetition: ours, the baseline, ours spinning.
    let mut la: Vec<[f64; 3]> = Vec::new();
    let mut lb: Vec<[f64; 3]> = Vec::new();
    let mut ls: Vec<[f64; 3]> = Vec::new();
    let summary = |l: &[f64]| [percentile(l, 0.5), percentile(l, 0.99), percentile(l, 1.0)];
    for _ in 0..reps {
        la.push(summary(&latency_agentbus(&rt, args.paced_events, None)?));
        ls.push(summary(&latency_agentbus(
            &rt,
            args.paced_events,
            Some(LATENCY_SPIN),
        )?));
        lb.push(summary(&latency_mpsc(&rt, args.paced_events)?));
    }
    // The sender a task on the subscribers' runtime: [current-thread, multi-thread].
    let mut ra: [Vec<[f64; 3]>; 2] = [Vec::new(), Vec::new()];
    let mut rb: [Vec<[f64; 3]>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..reps {
        for (i, flavor) in [Flavor::CurrentThread, Flavor::MultiThread]
            .into_iter()
            .enumerate()
        {
            ra[i].push(summary(&latency_in_runtime_agentbus(
                flavor,
                args.paced_events,
            )?));
            rb[i].push(summary(&latency_in_runtime_mpsc(
                flavor,
                args.paced_events,
            )?));
        }
    }
    let medians = |runs: &[Vec<[f64; 3]>; 2]| {
        let mut out = [[0.0; 3]; 2];
        for (flavor, runs) in runs.iter().enumerate() {
            for i in 0..3 {
                out[flavor][i] = median(runs.iter().map(|l| l[i]).collect());
            }
        }
        out
    };
    ours.latency_in_runtime_us = Some(medians(&ra));
    base.latency_in_runtime_us = Some(medians(&rb));
    let mut spinning = [0.0; 3];
    for i in 0..3 {
        spinning[i] = median(ls.iter().map(|l| l[i]).collect());
        ours.latency_us[i] = median(la.iter().map(|l| l[i]).collect());
        base.latency_us[i] = median(lb.iter().map(|l| l[i]).collect());
    }
    ours.latency_spin_us = Some(spinning);
    let (mut ma, mut mb) = (Vec::new(), Vec::new());
    for _ in 0..reps.min(3) {
        ma.push(memory_agentbus(&rt, args.pending)?);
        mb.push(memory_mpsc(&rt, args.pending)?);
    }
    ours.bytes_per_pending = median(ma);
    base.bytes_per_pending = median(mb);
    Ok((ours, base))
}

/// The latency figures, by JSON key: the cross-thread sender, then a sender task on a
/// current-thread and on a multi-thread runtime.
const LATENCY_KEYS: [&str; 3] = [
    "latency_us",
    "latency_us_sender_task_current_thread",
    "latency_us_sender_task_multi_thread",
];

/// Ours divided by theirs, per figure (calls: higher is better; latency and bytes: lower
/// is better), for the figures both have.
fn ratios(ours: &Value, theirs: &Value) -> Value {
    let calls: serde_json::Map<String, Value> = SUBSCRIBERS
        .iter()
        .filter_map(|n| {
            let n = n.to_string();
            let o = ours["calls_per_s"][&n].as_f64()?;
            let t = theirs["calls_per_s"][&n].as_f64()?;
            Some((n, json!(round3(o / t))))
        })
        .collect();
    let ratio = |o: &Value, t: &Value| Some(round3(o.as_f64()? / t.as_f64()?));
    let mut out = json!({
        "calls_per_s": calls,
        "bytes_per_pending": ratio(&ours["bytes_per_pending"], &theirs["bytes_per_pending"]),
    });
    for key in LATENCY_KEYS {
        out[key] = json!({
            "p50": ratio(&ours[key]["p50"], &theirs[key]["p50"]),
            "p99": ratio(&ours[key]["p99"], &theirs[key]["p99"]),
            "max": ratio(&ours[key]["max"], &theirs[key]["max"]),
        });
    }
    out
}

/// Runs the Vision Agents script if `vision_agents` imports; its JSON, or why not.
fn vision_agents(args: &Args) -> Value {
    if args.no_python {
        return json!({"available": false, "reason": "--no-python"});
    }
    if let Err(reason) = crate::python::can_import(&args.python, "vision_agents") {
        return json!({"available": false, "reason": reason});
    }
    crate::python::run_json(
        &args.python,
        peer_command(&args.python, args.script.as_deref(), VISION_AGENTS_SCRIPT)
            .args(["--events", &args.events.min(100_000).to_string()])
            .args(["--paced-events", &args.paced_events.to_string()])
            .args(["--pending", &args.pending.min(20_000).to_string()])
            .args(["--reps", &args.reps.clamp(1, 3).to_string()]),
    )
}

/// Runs `agentbus bench bus`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.events >= 100,
        "--events must be at least 100 (100 subscribers)"
    );
    anyhow::ensure!(
        args.paced_events >= 1 && args.pending >= 1,
        "--paced-events and --pending must be positive"
    );
    let (ours, base) = measure(&args)?;
    let base_json = base.to_json();
    let va = vision_agents(&args);
    let event_bytes = (std::mem::size_of::<Tick>() + 2 * std::mem::size_of::<usize>()) as f64;
    let mut ours_json = ours.to_json();
    ours_json["event_bytes"] = json!(event_bytes);
    ours_json["queue_bytes_per_pending"] = json!(ours.bytes_per_pending - event_bytes);
    let mut report = json!({
        "bench": "bus",
        "config": {
            "calls_per_run": args.events,
            "paced_events": args.paced_events,
            "paced_rate_per_s": PACED_RATE,
            "pending": args.pending,
            "reps": args.reps.max(1),
            "capacity": CAPACITY,
            "runtime_worker_threads": 1,
            "sender": "one plain thread (no runtime), Block policy / blocking_send",
            "sender_task": "latency_us_sender_task_*: the sender is a task on the subscribers' runtime (current-thread; multi-thread with 2 workers), send(..).await then a yield, paced by sleeping and yielding",
            "latency_spinning": format!("consumer spins {} µs before parking (SubscribeOptions::spin; default {} µs)", LATENCY_SPIN.as_micros(), agentbus::DEFAULT_SPIN.as_micros()),
            "bytes_per_pending": "measured (counting global allocator), event included",
        },
        "agentbus": ours_json,
        "mpsc_baseline": base_json,
        "ratio_vs_mpsc": ratios(&ours_json, &base_json),
        "vision_agents": va,
    });
    let va_available = va["available"] == json!(true);
    if va_available {
        // Vision Agents' sender and handlers always share one asyncio loop: its one
        // latency figure is the peer of both sender-task cases.
        let mut va = va.clone();
        for key in &LATENCY_KEYS[1..] {
            va[*key] = va["latency_us"].clone();
        }
        report["ratio_vs_vision_agents"] = ratios(&ours_json, &va);
        report["vision_agents"] = va;
    }
    let n1 = ours.calls_per_s.first().map_or(0.0, |c| c.1);
    let min_ratio = ours
        .calls_per_s
        .iter()
        .zip(&base.calls_per_s)
        .map(|(a, b)| a.1 / b.1)
        .fold(f64::INFINITY, f64::min);
    report["targets"] = json!({
        "n1_calls_per_s_at_least_5m": n1 >= 5_000_000.0,
        "at_least_half_of_mpsc_at_every_n": min_ratio >= 0.5,
        "p99_at_most_50us": ours.latency_us[1] <= 50.0,
        "p99_at_most_50us_spinning": ours.latency_spin_us.is_some_and(|l| l[1] <= 50.0),
        "bytes_per_pending_at_most_256": ours.bytes_per_pending <= 256.0,
    });
    if let Some(in_runtime) = ours.latency_in_runtime_us {
        let va_p99 = report["vision_agents"]["latency_us"]["p99"].as_f64();
        for (name, l) in ["current_thread", "multi_thread"].iter().zip(in_runtime) {
            report["targets"][format!("sender_task_{name}_p50_at_most_5us")] = json!(l[0] <= 5.0);
            if let Some(va_p99) = va_p99 {
                report["targets"][format!("sender_task_{name}_p99_at_most_vision_agents")] =
                    json!(l[1] <= va_p99);
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(r: &Value) {
    let f = |v: &Value| match v.as_f64() {
        Some(x) if x >= 1000.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.3}"),
        None => "-".to_owned(),
    };
    let va = r["vision_agents"]["available"] == json!(true);
    println!(
        "agentbus bench bus — medians of {} reps; {} calls per throughput run; paced {}/s",
        r["config"]["reps"], r["config"]["calls_per_run"], r["config"]["paced_rate_per_s"]
    );
    let mut header = format!(
        "{:<26}{:>14}{:>14}{:>10}",
        "figure", "agentbus", "tokio mpsc", "ratio"
    );
    if va {
        header.push_str(&format!("{:>16}{:>10}", "vision_agents", "ratio"));
    }
    println!("{header}");
    let mut rows: Vec<(String, Vec<String>)> = SUBSCRIBERS
        .iter()
        .map(|n| {
            (
                format!("calls_per_s N={n}"),
                vec!["calls_per_s".to_owned(), n.to_string()],
            )
        })
        .collect();
    for (key, label) in LATENCY_KEYS.iter().zip([
        "latency_us",
        "task sender, 1 thread",
        "task sender, 2 workers",
    ]) {
        for k in ["p50", "p99", "max"] {
            rows.push((
                format!("{label} {k}"),
                vec![(*key).to_owned(), k.to_owned()],
            ));
        }
    }
    rows.push((
        "bytes_per_pending".to_owned(),
        vec!["bytes_per_pending".to_owned()],
    ));
    let get = |root: &Value, path: &[String]| {
        path.iter().fold(root.clone(), |v, k| v[k.as_str()].clone())
    };
    for (label, path) in rows {
        let mut line = format!(
            "{label:<26}{:>14}{:>14}{:>10}",
            f(&get(&r["agentbus"], &path)),
            f(&get(&r["mpsc_baseline"], &path)),
            f(&get(&r["ratio_vs_mpsc"], &path))
        );
        if va {
            line.push_str(&format!(
                "{:>16}{:>10}",
                f(&get(&r["vision_agents"], &path)),
                f(&get(&r["ratio_vs_vision_agents"], &path))
            ));
        }
        println!("{line}");
    }
    let spinning = &r["agentbus"]["latency_us_spinning"];
    if !spinning.is_null() {
        println!(
            "latency_us spinning {} µs before parking: p50 {} p99 {} max {} (no wake-ups; costs a busy core)",
            LATENCY_SPIN.as_micros(),
            f(&spinning["p50"]),
            f(&spinning["p99"]),
            f(&spinning["max"])
        );
    }
    println!(
        "event_bytes {} (one Arc per event), queue_bytes_per_pending {}",
        f(&r["agentbus"]["event_bytes"]),
        f(&r["agentbus"]["queue_bytes_per_pending"])
    );
    if !va {
        println!(
            "vision_agents: not run ({})",
            r["vision_agents"]["reason"]
                .as_str()
                .unwrap_or("unavailable")
        );
    }
    println!("targets: {}", r["targets"]);
}
