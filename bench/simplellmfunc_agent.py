"""The `agentbus bench agent` scenario through SimpleLLMFunc's `llm_chat` (the peer).

One agent turn with a fake provider and no model time: LLM call 1 streams N text chunks,
then two parallel tool calls (`add`, `mul`) whose argument fragments interleave by index
(4 fragments each), finish `tool_calls`, a usage chunk; the tools return at once; LLM
call 2 streams 20 text chunks, finish `stop`, a usage chunk. The chunk objects are built
once, outside the timed region, and replayed (as agentbus's scripted model does).

Prints one JSON object: per_turn_ms_median, per_turn_ms_p90, events_per_turn,
events_per_s, peak_rss_mb. Needs SimpleLLMFunc 0.8 (Python >= 3.12):
    python3.12 -m venv venv && venv/bin/pip install simplellmfunc==0.8.4
Run by `agentbus bench agent` when `import SimpleLLMFunc` works; not part of CI.
"""

import argparse
import asyncio
import json
import logging
import resource
import statistics
import time

from openai.types.chat.chat_completion import ChatCompletion, Choice as FullChoice
from openai.types.chat.chat_completion_chunk import (
    ChatCompletionChunk,
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)
from openai.types.chat.chat_completion_message import ChatCompletionMessage
from openai.types.completion_usage import CompletionUsage

from SimpleLLMFunc import llm_chat, tool
from SimpleLLMFunc.hooks import is_event_yield, is_response_yield
from SimpleLLMFunc.interface.llm_interface import LLM_Interface


def chunk(delta=None, finish=None, usage=None, choices=True):
    return ChatCompletionChunk(
        id="chatcmpl-bench",
        created=0,
        model="fake",
        object="chat.completion.chunk",
        choices=[Choice(index=0, delta=delta or ChoiceDelta(), finish_reason=finish)] if choices else [],
        usage=usage,
    )


def fragments(text, parts):
    size = -(-len(text) // parts)
    return [text[i * size:(i + 1) * size] for i in range(parts)]


def scenario(chunks):
    first = [chunk(ChoiceDelta(role="assistant", content=f"w{i % 10} ")) for i in range(chunks)]
    calls = [("call_add", "add", '{"a": 1234, "b": 5678}'), ("call_mul", "mul", '{"a": 1234, "b": 5678}')]
    pieces = [fragments(args, 4) for _, _, args in calls]
    for piece in range(4):
        for index, (call_id, name, _) in enumerate(calls):
            function = ChoiceDeltaToolCallFunction(arguments=pieces[index][piece], name=name if piece == 0 else None)
            tool_call = ChoiceDeltaToolCall(
                index=index,
                id=call_id if piece == 0 else None,
                type="function" if piece == 0 else None,
                function=function,
            )
            first.append(chunk(ChoiceDelta(tool_calls=[tool_call])))
    first.append(chunk(finish="tool_calls"))
    first.append(chunk(usage=CompletionUsage(prompt_tokens=120, completion_tokens=530, total_tokens=650), choices=False))
    second = [chunk(ChoiceDelta(content=f"t{i} ")) for i in range(20)]
    second.append(chunk(finish="stop"))
    second.append(chunk(usage=CompletionUsage(prompt_tokens=700, completion_tokens=20, total_tokens=720), choices=False))
    return [first, second]


class FakeInterface(LLM_Interface):
    """Replays the scenario's two calls, alternately, with no model time."""

    def __init__(self, chunks):
        super().__init__(None, "fake")
        self.turns = scenario(chunks)
        self.calls = 0

    async def chat(self, trace_id="", stream=False, messages=None, timeout=None, *args, **kwargs):
        text = "".join(c.choices[0].delta.content or "" for c in self.turns[1] if c.choices)
        return ChatCompletion(
            id="chatcmpl-bench", created=0, model="fake", object="chat.completion",
            choices=[FullChoice(index=0, finish_reason="stop",
                                message=ChatCompletionMessage(role="assistant", content=text))],
        )

    async def chat_stream(self, trace_id="", stream=True, messages=None, timeout=None, *args, **kwargs):
        turn = self.turns[self.calls % 2]
        self.calls += 1
        for item in turn:
            yield item


@tool(name="add", description="Adds two integers.")
async def add(a: int, b: int) -> int:
    """Adds.

    Args:
        a: first operand
        b: second operand
    """
    return a + b


@tool(name="mul", description="Multiplies two integers.")
async def mul(a: int, b: int) -> int:
    """Multiplies.

    Args:
        a: first operand
        b: second operand
    """
    return a * b


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--chunks", type=int, default=500)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)

    interface = FakeInterface(args.chunks)

    @llm_chat(llm_interface=interface, toolkit=[add, mul], stream=True, max_tool_calls=10)
    async def agent(message: str, history=None):
        """You are a calculator agent. Use the tools."""

    async def turn():
        events = 0
        answered = False
        async for output in agent("Compute 1234 + 5678 and 1234 * 5678.", []):
            if is_event_yield(output):
                events += 1
            elif is_response_yield(output):
                answered = True
        assert answered, "the turn ended without a response"
        return events

    for _ in range(args.warmup):
        await turn()
    times = []
    events = 0
    for _ in range(args.turns):
        start = time.perf_counter()
        events = await turn()
        times.append(time.perf_counter() - start)
    ms = sorted(t * 1000.0 for t in times)
    p90 = ms[min(len(ms) - 1, round((len(ms) - 1) * 0.9))]
    print(json.dumps({
        "per_turn_ms_median": statistics.median(ms),
        "per_turn_ms_p90": p90,
        "events_per_turn": events,
        "events_per_s": events * len(times) / sum(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    asyncio.run(main())
