"""Pipecat's frame pipeline, the baseline of `agentbus bench voice`: 20 ms audio frames
(16 kHz mono, InputAudioRawFrame) through N pass-through FrameProcessors to a sink, in a
PipelineTask run by a PipelineRunner. Prints JSON: frames/s for a burst, and the per-frame
latency (queued -> reaching the sink) at one frame per millisecond.

Needs `pip install pipecat-ai` (Python 3.12 or later).
"""

import argparse
import asyncio
import json
import time
from importlib.metadata import version

from pipecat.frames.frames import InputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameProcessor


class PassThrough(FrameProcessor):
    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class Sink(FrameProcessor):
    def __init__(self, expected, sent):
        super().__init__()
        self.expected = expected
        self.sent = sent
        self.latencies = []
        self.count = 0
        self.done = asyncio.Event()

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            sent = self.sent.pop(frame.id, None)
            if sent is not None:
                self.latencies.append((time.perf_counter() - sent) * 1e6)
            self.count += 1
            if self.count >= self.expected:
                self.done.set()
        await self.push_frame(frame, direction)


async def run(stages, count, pace):
    sent = {}
    sink = Sink(count, sent)
    pipeline = Pipeline([PassThrough() for _ in range(stages)] + [sink])
    task = PipelineTask(
        pipeline,
        params=PipelineParams(),
        cancel_on_idle_timeout=False,
        check_dangling_tasks=False,
        enable_rtvi=False,
    )
    runner = PipelineRunner(handle_sigint=False)
    running = asyncio.create_task(runner.run(task))
    await asyncio.sleep(0.5)  # the StartFrame goes through first
    audio = bytes(640)
    start = time.perf_counter()
    for _ in range(count):
        frame = InputAudioRawFrame(audio=audio, sample_rate=16000, num_channels=1)
        sent[frame.id] = time.perf_counter()
        await task.queue_frame(frame)
        if pace:
            await asyncio.sleep(pace)
    await asyncio.wait_for(sink.done.wait(), timeout=300)
    took = time.perf_counter() - start
    await task.cancel()
    await running
    return took, sorted(sink.latencies)


def percentile(values, p):
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round((len(values) - 1) * p))]


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--paced-frames", type=int, default=3000)
    parser.add_argument("--stages", type=int, default=5)
    args = parser.parse_args()
    took, _ = await run(args.stages, args.frames, None)
    _, latencies = await run(args.stages, args.paced_frames, 0.001)
    print(
        json.dumps(
            {
                "version": version("pipecat-ai"),
                "stages": args.stages,
                "frames": args.frames,
                "frames_per_s": args.frames / took,
                "latency_us_p50": percentile(latencies, 0.5),
                "latency_us_p99": percentile(latencies, 0.99),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
