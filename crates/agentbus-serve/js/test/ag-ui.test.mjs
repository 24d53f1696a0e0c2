// The real AG-UI client (@ag-ui/client 1.0.0, unchanged) against `agentbus serve`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { HttpAgent } from '@ag-ui/client';
import { EventSchema } from '@ag-ui/core/schemas';
import { startFakeOpenAI, startServe, API_KEY } from './harness.mjs';

let provider;
let serve;

before(async () => {
  provider = await startFakeOpenAI();
  serve = await startServe({ providerUrl: provider.url });
});

after(async () => {
  await serve?.stop();
  await provider?.close();
});

function recorder() {
  const events = [];
  const errors = [];
  return {
    events,
    errors,
    subscriber: {
      onEvent: ({ event }) => { events.push(event); },
      onRunFailed: ({ error }) => { errors.push(error); },
    },
  };
}

test('runAgent completes with reasoning, text, a server tool call and its result, and usage', async () => {
  const agent = new HttpAgent({ url: `${serve.url}/ag-ui`, threadId: 'thread-agui-1' });
  agent.addMessage({ id: 'u1', role: 'user', content: 'What is 17 * 23?' });
  const rec = recorder();
  const result = await agent.runAgent({ runId: 'run-1' }, rec.subscriber);
  assert.deepEqual(rec.errors, []);
  for (const event of rec.events) {
    const parsed = EventSchema.safeParse(event);
    assert.ok(parsed.success, `${event.type}: ${parsed.error}`);
  }
  const types = rec.events.map((e) => e.type);
  assert.equal(types[0], 'RUN_STARTED');
  assert.equal(types.at(-1), 'RUN_FINISHED');
  for (const t of ['REASONING_START', 'REASONING_MESSAGE_CONTENT', 'REASONING_END', 'TEXT_MESSAGE_CONTENT', 'TOOL_CALL_START', 'TOOL_CALL_ARGS', 'TOOL_CALL_END', 'TOOL_CALL_RESULT', 'STEP_STARTED', 'STEP_FINISHED']) {
    assert.ok(types.includes(t), `missing ${t} in ${types.join(' ')}`);
  }
  // The client's own message state: the assistant's tool call with parsed arguments,
  // the tool's result, the reasoning, and the final answer.
  const messages = agent.messages;
  const withCall = messages.find((m) => m.role === 'assistant' && m.toolCalls?.length);
  assert.ok(withCall, JSON.stringify(messages));
  assert.equal(withCall.toolCalls[0].function.name, 'calculator');
  assert.deepEqual(JSON.parse(withCall.toolCalls[0].function.arguments), { expression: '17 * 23' });
  const toolMessage = messages.find((m) => m.role === 'tool');
  assert.equal(toolMessage.toolCallId, withCall.toolCalls[0].id);
  assert.equal(toolMessage.content, '391');
  const reasoning = messages.find((m) => m.role === 'reasoning');
  assert.equal(reasoning.content, 'The user wants a product.');
  const answer = messages.filter((m) => m.role === 'assistant' && m.content).at(-1);
  assert.equal(answer.content, 'The answer is 391.');
  assert.ok(result.newMessages.length >= 4);
  const finished = rec.events.at(-1);
  assert.deepEqual(finished.outcome, { type: 'success' });
  assert.equal(finished.usage[0].inputTokens, 100);
  assert.equal(finished.usage[0].outputTokens, 26);
  assert.equal(finished.usage[0].totalTokens, 126);
  assert.equal(finished.usage[0].reasoningTokens, 5);
  assert.ok(!JSON.stringify(rec.events).includes(API_KEY), 'the API key never reaches a client');
});

test('a client-declared tool ends the run; the client answers in its next run', async () => {
  const agent = new HttpAgent({ url: `${serve.url}/ag-ui`, threadId: 'thread-agui-2' });
  agent.addMessage({ id: 'u1', role: 'user', content: 'CLIENT: ask me before you go on' });
  const tools = [{ name: 'confirm', description: 'Asks the user to confirm.', parameters: { type: 'object', properties: { question: { type: 'string' } } } }];
  const rec = recorder();
  let pending;
  await agent.runAgent({ runId: 'run-c1', tools }, {
    ...rec.subscriber,
    onRunFinishedEvent: (p) => { pending = p.pendingToolCallIds; },
  });
  assert.deepEqual(rec.errors, []);
  assert.deepEqual(pending, ['call_client_1']);
  assert.ok(!rec.events.some((e) => e.type === 'TOOL_CALL_RESULT'), 'the client runs its own tool');
  const call = agent.messages.find((m) => m.toolCalls?.length).toolCalls[0];
  assert.equal(call.function.name, 'confirm');
  assert.deepEqual(JSON.parse(call.function.arguments), { question: 'Proceed?' });

  agent.addMessage({ id: 't1', role: 'tool', toolCallId: call.id, content: 'yes' });
  const second = recorder();
  await agent.runAgent({ runId: 'run-c2', tools }, second.subscriber);
  assert.deepEqual(second.errors, []);
  assert.equal(second.events.at(-1).type, 'RUN_FINISHED');
  assert.equal(agent.messages.at(-1).content, 'The answer is yes.');
  const last = provider.requests.at(-1).messages.at(-1);
  assert.equal(last.role, 'tool');
  assert.equal(last.content, 'yes');
});

test('a failing provider gives RUN_ERROR', async () => {
  const agent = new HttpAgent({ url: `${serve.url}/ag-ui`, threadId: 'thread-agui-3' });
  agent.addMessage({ id: 'u1', role: 'user', content: 'FAIL please' });
  const rec = recorder();
  let runError;
  await agent.runAgent({ runId: 'run-f' }, { ...rec.subscriber, onRunErrorEvent: ({ event }) => { runError = event; } });
  assert.ok(runError, rec.events.map((e) => e.type).join(' '));
  assert.equal(runError.code, 'llm_error');
  assert.match(runError.message, /Incorrect API key|401/);
  assert.ok(!JSON.stringify(runError).includes(API_KEY));
  assert.equal(rec.events.at(-1).type, 'RUN_ERROR');
});

test('an aborted run ends cleanly on both sides', async () => {
  const agent = new HttpAgent({ url: `${serve.url}/ag-ui`, threadId: 'thread-agui-4' });
  agent.addMessage({ id: 'u1', role: 'user', content: 'HANG forever' });
  const rec = recorder();
  const run = agent.runAgent({ runId: 'run-a' }, {
    ...rec.subscriber,
    onTextMessageContentEvent: () => { agent.abortRun(); },
  });
  await run;
  assert.ok(rec.events.some((e) => e.type === 'TEXT_MESSAGE_CONTENT'));
  assert.equal(agent.isRunning, false);
  // The server cancels the run: its request to the provider is dropped.
  for (let i = 0; i < 100 && provider.openStreams() > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(provider.openStreams(), 0, 'the provider stream was closed by the cancelled run');
});

test('bad input is refused with a clear 4xx and nothing runs', async () => {
  const before = provider.requests.length;
  const post = (body, headers = {}) => fetch(`${serve.url}/ag-ui`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const malformed = await post('{"threadId": ');
  assert.equal(malformed.status, 400);
  assert.match((await malformed.json()).error, /invalid body/);
  const role = await post(JSON.stringify({ threadId: 't', runId: 'r', messages: [{ id: 'x', role: 'wizard', content: 'hi' }], tools: [], context: [] }));
  assert.equal(role.status, 400);
  assert.match((await role.json()).error, /messages\[0\]/);
  const big = await post(JSON.stringify({ threadId: 't', runId: 'r', messages: [{ id: 'x', role: 'user', content: 'x'.repeat(2 * 1024 * 1024) }] }));
  assert.equal(big.status, 413);
  assert.equal(provider.requests.length, before, 'no provider call was made');
});
