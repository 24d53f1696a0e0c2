// The browser edge end to end: `agentbus voice --listen` on the embedded model, and its
// page in headless Chromium whose microphone is a WAV file espeak-ng speaks at test time
// ("Hello. What is the capital of France?"). The page must hear a spoken reply; the
// server's event stream must hold the edge, call-session, speech and agent events in
// the order a call makes them, and the call must be recorded (--record).
//
// Needs: $AGENTBUS_BIN (the agentbus binary, models pulled), espeak-ng, Chromium
// ($CHROMIUM_PATH or /usr/bin/chromium). A screenshot goes to test-output/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const outputDir = path.resolve(here, '../test-output');
const bin = process.env.AGENTBUS_BIN;
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A 16-bit mono PCM WAV: `before` s of silence, espeak-ng saying `text`, `after` s of
 * silence (the turn ends on silence; Chromium's fake device plays the file once). */
function speech(dir, text, before = 1.0, after = 4.0) {
  const raw = path.join(dir, 'espeak.wav');
  execFileSync('espeak-ng', ['-w', raw, text]);
  const wav = fs.readFileSync(raw);
  // espeak-ng writes a canonical 44-byte header: PCM, mono, 16-bit.
  const rate = wav.readUInt32LE(24);
  assert.equal(wav.readUInt16LE(22), 1, 'espeak-ng writes mono');
  let data = 36;
  while (wav.toString('ascii', data, data + 4) !== 'data') data += 8 + wav.readUInt32LE(data + 4);
  const samples = wav.subarray(data + 8, data + 8 + wav.readUInt32LE(data + 4));
  const pad = (seconds) => Buffer.alloc(Math.round(seconds * rate) * 2);
  const body = Buffer.concat([pad(before), samples, pad(after)]);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + body.length, 4);
  header.write('WAVEfmt ', 8, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(body.length, 40);
  const file = path.join(dir, 'question.wav');
  fs.writeFileSync(file, Buffer.concat([header, body]));
  return file;
}

/** Starts `agentbus voice --listen` on a free port; resolves with its URL. */
function startServer(dir) {
  const child = spawn(bin, ['voice', '--listen', '127.0.0.1:0', '--events', 'jsonl', '--no-store', '--record', 'calls'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  const url = new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      const found = /open (http:\/\/[^\s]+)/.exec(stderr);
      if (found) resolve(found[1]);
    });
    child.on('exit', (code) => reject(new Error(`agentbus voice exited (${code}):\n${stderr}`)));
    setTimeout(() => reject(new Error(`no URL from agentbus voice in 120 s:\n${stderr}`)), 120_000).unref();
  });
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) { resolve(child.exitCode); return; }
    child.on('exit', (code) => resolve(code));
    child.kill('SIGINT');
    setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
  });
  return { url, stop, output: () => ({ stdout, stderr }) };
}

test('a spoken question in Chromium gets a spoken answer, with the edge and call events', { timeout: 600_000 }, async (t) => {
  assert.ok(bin, 'set AGENTBUS_BIN to the agentbus binary');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentbus-browser-'));
  const question = speech(dir, 'Hello. What is the capital of France?');
  const server = startServer(dir);
  const url = await server.url;
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${question}%noloop`,
      '--autoplay-policy=no-user-gesture-required',
      '--no-sandbox',
    ],
  });
  t.after(async () => { await browser.close(); await server.stop(); });
  const page = await browser.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  await page.goto(`${url}?autostart=1&name=tester`);
  try {
    await page.waitForFunction(
      () => window.agentbusVoice.playedSamples > 8000 && window.agentbusVoice.replies.length > 0,
      null,
      { timeout: 300_000, polling: 250 },
    );
  } catch (error) {
    const state = await page.evaluate(() => JSON.stringify(window.agentbusVoice));
    throw new Error(`no spoken reply: ${error.message}\npage: ${state}\nconsole: ${consoleLines.join('\n')}\nserver: ${server.output().stderr}`);
  }
  // Hang up; the server ends the call and tells the page.
  await page.evaluate(() => window.agentbusVoiceStop());
  await page.waitForFunction(() => window.agentbusVoice.state === 'ended', null, { timeout: 120_000 });
  fs.mkdirSync(outputDir, { recursive: true });
  await page.screenshot({ path: path.join(outputDir, 'voice-page.png'), fullPage: true });
  const seen = await page.evaluate(() => window.agentbusVoice);

  assert.equal(seen.error, null);
  assert.match(seen.transcripts.join(' '), /capital of france/i, 'the page shows what was heard');
  assert.ok(seen.replies.join(' ').length > 0, 'the page shows what the agent said');
  assert.ok(seen.audioMessages > 0 && seen.playedSamples > 8000, 'reply audio reached the page');
  for (const type of ['plugin.edge.participant_joined', 'plugin.vad_speech_start', 'agent.user_transcript', 'plugin.tts_synthesis_start']) {
    assert.ok(seen.eventTypes.includes(type), `the page showed ${type}`);
  }

  const exit = await server.stop();
  assert.equal(exit, 0, `agentbus voice --listen exits cleanly on Ctrl-C:\n${server.output().stderr}`);
  const events = server.output().stdout.trim().split('\n').map((line) => JSON.parse(line));
  const types = events.map((e) => e.type);
  const at = (type) => {
    const index = types.indexOf(type);
    assert.ok(index >= 0, `the server published ${type}`);
    return index;
  };
  const inOrder = (...sequence) => {
    const positions = sequence.map(at);
    for (let i = 1; i < positions.length; i++) {
      assert.ok(positions[i - 1] < positions[i], `${sequence[i - 1]} before ${sequence[i]}`);
    }
  };
  inOrder('call.created', 'call.session_started', 'agent.joined_call', 'call.session_participant_joined',
    'plugin.edge.participant_joined', 'plugin.edge.track_added', 'plugin.edge.audio_received',
    'plugin.vad_speech_start', 'plugin.turn_detection.turn_started', 'plugin.vad_speech_end',
    'plugin.turn_detection.turn_ended', 'plugin.stt_transcript', 'agent.user_transcript',
    'plugin.llm_request_started', 'plugin.tts_synthesis_start', 'plugin.tts_audio',
    'plugin.edge.track_removed', 'plugin.edge.participant_left', 'plugin.edge.call_ended',
    'call.session_participant_left', 'agent.left_call', 'call.session_ended', 'call.ended');
  const session = events.find((e) => e.type === 'call.created').session_id;
  assert.ok(session, 'the call has a session id');
  for (const type of ['plugin.edge.participant_joined', 'agent.user_transcript', 'plugin.tts_synthesis_start', 'call.ended']) {
    assert.equal(events.find((e) => e.type === type).session_id, session, `${type} is in the call's session`);
  }
  inOrder('call.session_started', 'call.recording_started', 'plugin.edge.participant_joined',
    'plugin.edge.participant_left', 'call.recording_stopped', 'call.session_ended');
  // The recording: both sides of the call, as WAV files named after the session.
  const recorded = (side) => fs.statSync(path.join(dir, 'calls', `${session}.${side}.wav`)).size;
  assert.ok(recorded('user') > 44 + 16000 * 2 * 2, 'at least 2 s of the user at 16 kHz');
  assert.ok(recorded('agent') > 44 + 8000 * 2, 'the reply');
  const captions = events.filter((e) => e.type === 'call.closed_caption');
  assert.ok(captions.some((c) => /capital of france/i.test(c.text)), 'the question is captioned');
  assert.ok(captions.some((c) => c.speaker_id === 'agent'), 'the answer is captioned');
});
