// Test harness: a loopback fake of the OpenAI Chat Completions streaming API (the
// chunk format of real recorded DeepSeek streams: reasoning_content, content,
// interleaved tool_calls deltas, a usage-carrying last chunk, `data: [DONE]`), and
// `agentbus serve` started against it.

import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../../..');
export const outputDir = path.resolve(here, '../test-output');

/** The API key the fake expects; it must never appear in a response of the server. */
export const API_KEY = 'sk-agentbus-test-0123456789abcdef';

function chunk(delta, finishReason = null, usage = null) {
  return {
    id: 'chatcmpl-fake-1',
    object: 'chat.completion.chunk',
    created: 1733500000,
    model: 'fake-model',
    system_fingerprint: 'fp_fake',
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    usage,
  };
}

function usage(prompt, completion, reasoning = 0) {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    completion_tokens_details: { reasoning_tokens: reasoning },
    prompt_tokens_details: { cached_tokens: 0 },
  };
}

/** What the fake streams for a request, chosen by the conversation: `SLOW` in the
 * user's message paces every chunk 250 ms apart (for the browser to watch). */
function script(body) {
  const plan = plainScript(body);
  const lastUser = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user');
  if (plan.chunks && String(lastUser?.content ?? '').includes('SLOW')) plan.delayMs ??= 250;
  return plan;
}

function plainScript(body) {
  const messages = body.messages ?? [];
  const last = messages[messages.length - 1] ?? {};
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const userText = typeof lastUser?.content === 'string' ? lastUser.content : JSON.stringify(lastUser?.content ?? '');
  if (last.role === 'tool') {
    return {
      chunks: [
        chunk({ role: 'assistant', content: '' }),
        chunk({ content: 'The answer ' }),
        chunk({ content: `is ${last.content}.` }),
        chunk({}, 'stop', usage(60, 6)),
      ],
    };
  }
  if (userText.includes('FAIL')) {
    return { status: 401, error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } };
  }
  if (userText.includes('HANG')) {
    return { chunks: [chunk({ role: 'assistant', content: 'Let me think' })], hang: true };
  }
  if (userText.includes('WORDS')) {
    const words = 'This answer streams slowly , word by word , so a page can watch it .'.split(' ');
    return { chunks: words.map((w) => chunk({ content: `${w} ` })).concat([chunk({}, 'stop', usage(12, words.length))]), delayMs: 20 };
  }
  const clientTool = (body.tools ?? []).map((t) => t.function?.name).find((n) => n && !['calculator', 'current_time', 'read_file', 'list_dir'].includes(n));
  if (userText.includes('CLIENT') && clientTool) {
    return {
      chunks: [
        chunk({ role: 'assistant', content: 'Asking you.' }),
        chunk({ tool_calls: [{ index: 0, id: 'call_client_1', type: 'function', function: { name: clientTool, arguments: '' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"question":' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '"Proceed?"}' } }] }),
        chunk({}, 'tool_calls', usage(30, 12)),
      ],
    };
  }
  return {
    chunks: [
      chunk({ role: 'assistant', content: null, reasoning_content: '' }),
      chunk({ content: null, reasoning_content: 'The user wants' }),
      chunk({ content: null, reasoning_content: ' a product.' }),
      chunk({ content: 'Let me compute ', reasoning_content: null }),
      chunk({ content: 'that.' }),
      chunk({ tool_calls: [{ index: 0, id: 'call_calc_1', type: 'function', function: { name: 'calculator', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"expression"' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: ': "17 * 23"}' } }] }),
      chunk({ content: '', reasoning_content: null }, 'tool_calls', usage(40, 20, 5)),
    ],
  };
}

/** Starts the fake provider; `requests` records every request body. */
export async function startFakeOpenAI() {
  const requests = [];
  const open = new Set();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => { raw += d; });
    req.on('end', async () => {
      if (req.headers.authorization !== `Bearer ${API_KEY}`) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'no key' } }));
        return;
      }
      const body = JSON.parse(raw);
      requests.push(body);
      const plan = script(body);
      if (plan.status) {
        res.writeHead(plan.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: plan.error }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      open.add(res);
      res.on('close', () => open.delete(res));
      for (const c of plan.chunks) {
        if (plan.delayMs) await new Promise((r) => setTimeout(r, plan.delayMs));
        res.write(`data: ${JSON.stringify(c)}\n\n`);
      }
      if (plan.hang) return;
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    openStreams: () => open.size,
    close: () => new Promise((r) => { for (const s of open) s.destroy(); server.close(r); }),
  };
}

/** The agentbus binary: $AGENTBUS_BIN, else the workspace's debug build. */
export function agentbusBin() {
  const bin = process.env.AGENTBUS_BIN ?? path.join(repoRoot, 'target', 'debug', 'agentbus');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`cargo build -p agentbus-cli\` first`);
  return bin;
}

/** Starts `agentbus serve` on a free port against `providerUrl`. */
export async function startServe({ providerUrl, args = [], store } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentbus-serve-'));
  const storeUrl = store ?? `sqlite://${path.join(dir, 'events.db')}`;
  const child = spawn(agentbusBin(), [
    'serve', '--addr', '127.0.0.1:0',
    '--provider', 'openai', '--base-url', providerUrl, '--model', 'fake-model',
    '--api-key-env', 'AGENTBUS_TEST_KEY', '--store', storeUrl, ...args,
  ], {
    cwd: dir,
    env: { ...process.env, AGENTBUS_TEST_KEY: API_KEY, RUST_LOG: process.env.RUST_LOG ?? 'warn', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`agentbus serve did not start: ${stderr}`)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/agentbus serve: (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`agentbus serve exited with ${code}: ${stderr}`)); });
  });
  return {
    url,
    dir,
    storeUrl,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise((r) => child.on('exit', (code) => r(code)));
      child.kill('SIGINT');
      return exited;
    },
  };
}

/** Reads an SSE body into its `data:` payloads. */
export async function sseFrames(response) {
  const text = await response.text();
  return text.split('\n\n').map((block) => block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n')).filter((d) => d.length > 0);
}
