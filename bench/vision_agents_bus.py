#!/usr/bin/env python3
"""The `agentbus bench bus` figures for Vision Agents' EventManager.

Run by `agentbus bench bus` when `python3 -c "import vision_agents"` works (install it in
a venv for development: `pip install vision-agents`; it is not installed in CI). Prints one
JSON object with the same keys as agentbus's own figures:

- calls_per_s for 1, 10 and 100 subscribers of one event type (async handlers that
  count): `--events` handler calls in total per run, sent in a burst, then
  `await manager.wait()`;
- latency_us p50/p99/max from just before `send` to the handler's first line, at a paced
  10,000 events/s (busy-waiting between sends, yielding to the loop), one subscriber;
- bytes_per_pending: tracemalloc growth while `--pending` events wait behind a stalled
  handler (after the manager has dispatched them), divided by their number.

Each figure is the median of `--reps` repetitions.
"""

import argparse
import asyncio
import dataclasses
import gc
import json
import statistics
import sys
import time
import tracemalloc

try:
    from vision_agents.core.events.manager import EventManager
    from vision_agents.core.events.base import BaseEvent
except ImportError as error:  # pragma: no cover - reported to the caller
    print(f"vision_agents is not importable: {error}", file=sys.stderr)
    sys.exit(2)


@dataclasses.dataclass
class BenchTickEvent(BaseEvent):
    """The benchmark's event: a counter and the send time."""

    type: str = dataclasses.field(default="bench.tick", init=False)
    n: int = 0
    sent_ns: int = 0


def new_manager() -> EventManager:
    manager = EventManager()
    manager.register(BenchTickEvent)
    return manager


def counting_handler(counter: list):
    async def handler(event: BenchTickEvent):
        counter[0] += 1

    return handler


async def burst(subscribers: int, calls: int) -> float:
    manager = new_manager()
    counters = [[0] for _ in range(subscribers)]
    for counter in counters:
        manager.subscribe(counting_handler(counter))
    sends = calls // subscribers
    start = time.perf_counter()
    for n in range(sends):
        manager.send(BenchTickEvent(n=n))
    await manager.wait()
    while sum(c[0] for c in counters) < sends * subscribers:
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    await shutdown(manager)
    return sends * subscribers / elapsed


async def paced(events: int, rate: float) -> list:
    manager = new_manager()
    latencies = []

    async def handler(event: BenchTickEvent):
        latencies.append((time.perf_counter_ns() - event.sent_ns) / 1000.0)

    manager.subscribe(handler)
    interval = 1e9 / rate
    next_ns = time.perf_counter_ns()
    for n in range(events):
        while time.perf_counter_ns() < next_ns:
            await asyncio.sleep(0)
        next_ns += interval
        manager.send(BenchTickEvent(n=n, sent_ns=time.perf_counter_ns()))
    await manager.wait()
    while len(latencies) < events:
        await asyncio.sleep(0.001)
    await shutdown(manager)
    return sorted(latencies)


async def memory(pending: int) -> float:
    manager = new_manager()
    gate = asyncio.Event()

    async def stalled(event: BenchTickEvent):
        await gate.wait()

    manager.subscribe(stalled)
    events = [BenchTickEvent(n=n) for n in range(pending)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for event in events:
        manager.send(event)
    # Let the manager dispatch the queued events to (stalled) handler calls.
    for _ in range(50):
        await asyncio.sleep(0.01)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    gate.set()
    await manager.wait()
    await shutdown(manager)
    # The events were built before measuring: add their own size back.
    event_bytes = sys.getsizeof(events[0]) + sys.getsizeof(events[0].__dict__)
    return (after - before) / pending + event_bytes


async def shutdown(manager: EventManager) -> None:
    stop = getattr(manager, "stop", None) or getattr(manager, "shutdown", None)
    if stop is not None:
        result = stop()
        if asyncio.iscoroutine(result):
            await result


def percentile(sorted_values: list, p: float) -> float:
    rank = round(p / 100.0 * (len(sorted_values) - 1))
    return sorted_values[min(rank, len(sorted_values) - 1)]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--paced-events", type=int, default=5_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    calls = {}
    for n in (1, 10, 100):
        calls[str(n)] = round(statistics.median([await burst(n, args.events) for _ in range(args.reps)]))
    lat = [await paced(args.paced_events, 10_000.0) for _ in range(args.reps)]
    latency = {
        key: statistics.median(percentile(l, p) for l in lat) for key, p in (("p50", 50), ("p99", 99), ("max", 100))
    }
    bytes_per_pending = statistics.median([await memory(args.pending) for _ in range(min(args.reps, 3))])
    try:
        from importlib.metadata import version

        va_version = version("vision-agents")
    except Exception:  # noqa: BLE001 - informational only
        va_version = None
    print(
        json.dumps(
            {
                "implementation": "vision_agents.core.events.manager.EventManager",
                "version": va_version,
                "python": sys.version.split()[0],
                "calls_per_s": calls,
                "latency_us": latency,
                "bytes_per_pending": bytes_per_pending,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
