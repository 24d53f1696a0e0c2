// The real AI SDK (ai 6.x, unchanged) against `agentbus serve`'s /api/chat: its chunk
// schema accepts every chunk, its transport and reader turn the stream into parts.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DefaultChatTransport, readUIMessageStream, uiMessageChunkSchema } from 'ai';
import { startFakeOpenAI, startServe, sseFrames, API_KEY } from './harness.mjs';

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

const question = { id: 'm1', role: 'user', parts: [{ type: 'text', text: 'What is 17 * 23?' }] };

test('uiMessageChunkSchema accepts every chunk of /api/chat', async () => {
  const response = await fetch(`${serve.url}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'chat-schema', messages: [question], trigger: 'submit-message' }),
  });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-vercel-ai-ui-message-stream'), 'v1');
  const frames = await sseFrames(response);
  assert.equal(frames.at(-1), '[DONE]');
  const schema = uiMessageChunkSchema();
  const types = [];
  for (const frame of frames.slice(0, -1)) {
    const chunk = JSON.parse(frame);
    const result = await schema.validate(chunk);
    assert.ok(result.success, `${frame}: ${result.error}`);
    types.push(chunk.type);
  }
  for (const t of ['start', 'start-step', 'reasoning-start', 'reasoning-delta', 'reasoning-end', 'text-start', 'text-delta', 'text-end', 'tool-input-start', 'tool-input-delta', 'tool-input-available', 'tool-output-available', 'finish-step', 'finish']) {
    assert.ok(types.includes(t), `missing ${t} in ${types.join(' ')}`);
  }
  assert.ok(!frames.join('').includes(API_KEY));
});

test('the transport and readUIMessageStream yield text, reasoning and a finished tool part', async () => {
  const transport = new DefaultChatTransport({ api: `${serve.url}/api/chat` });
  const stream = await transport.sendMessages({
    chatId: 'chat-parts',
    messages: [question],
    trigger: 'submit-message',
    messageId: undefined,
    abortSignal: undefined,
  });
  let message;
  for await (const m of readUIMessageStream({ stream, onError: (e) => { throw e; } })) message = m;
  assert.equal(message.role, 'assistant');
  const kinds = message.parts.map((p) => p.type);
  const reasoning = message.parts.find((p) => p.type === 'reasoning');
  assert.equal(reasoning.text, 'The user wants a product.');
  const tool = message.parts.find((p) => p.type === 'dynamic-tool');
  assert.ok(tool, kinds.join(' '));
  assert.equal(tool.toolName, 'calculator');
  assert.equal(tool.state, 'output-available');
  assert.deepEqual(tool.input, { expression: '17 * 23' });
  assert.equal(tool.output, 391);
  const texts = message.parts.filter((p) => p.type === 'text').map((p) => p.text);
  assert.deepEqual(texts, ['Let me compute that.', 'The answer is 391.']);
  assert.equal(message.metadata.usage.totalTokens, 126);

  // The conversation continues with the client's copy of the history.
  const follow = { id: 'm2', role: 'user', parts: [{ type: 'text', text: 'WORDS now' }] };
  const next = await transport.sendMessages({ chatId: 'chat-parts', messages: [question, message, follow], trigger: 'submit-message' });
  let reply;
  for await (const m of readUIMessageStream({ stream: next })) reply = m;
  assert.match(reply.parts.filter((p) => p.type === 'text').map((p) => p.text).join(''), /streams slowly/);
  const sent = provider.requests.at(-1).messages;
  assert.ok(sent.some((m) => m.role === 'tool' && String(m.content) === '391'), JSON.stringify(sent));
});

test('a failing provider gives an error chunk', async () => {
  const transport = new DefaultChatTransport({ api: `${serve.url}/api/chat` });
  const stream = await transport.sendMessages({
    chatId: 'chat-fail',
    messages: [{ id: 'm1', role: 'user', parts: [{ type: 'text', text: 'FAIL' }] }],
    trigger: 'submit-message',
  });
  const errors = [];
  for await (const _ of readUIMessageStream({ stream, onError: (e) => errors.push(e), terminateOnError: true })) { /* parts */ }
  assert.equal(errors.length, 1);
  assert.match(String(errors[0].message ?? errors[0]), /Incorrect API key|401/);
});
