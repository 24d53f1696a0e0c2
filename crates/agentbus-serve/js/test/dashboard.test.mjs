// The dashboard in a real browser (Debian's headless Chromium, driven by playwright-core):
// a run appears live, a reload in the middle resumes without a gap, a stored session
// replays, and the prompt box starts a run. Screenshots go to test-output/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { chromium } from 'playwright-core';
import { startFakeOpenAI, startServe, outputDir, API_KEY } from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let provider;
let serve;
let browser;
let userDataDir;

before(async () => {
  fs.mkdirSync(outputDir, { recursive: true });
  provider = await startFakeOpenAI();
  serve = await startServe({ providerUrl: provider.url });
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentbus-chromium-'));
  browser = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: FLAGS });
});

after(async () => {
  await browser?.close();
  await serve?.stop();
  await provider?.close();
});

/** Starts a paced run from outside the page (another client), reading it to the end. */
function startRun(threadId, content) {
  return fetch(`${serve.url}/ag-ui`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ threadId, runId: `run-${threadId}`, messages: [{ id: 'u1', role: 'user', content }], tools: [], context: [] }),
  }).then((r) => r.text());
}

async function storedSeqs(session) {
  const r = await fetch(`${serve.url}/api/sessions/${session}/events?limit=10000`);
  return (await r.json()).events.map((e) => e.seq);
}

async function shownSeqs(page) {
  return page.$$eval('#log div[data-seq]', (divs) => divs.map((d) => Number(d.dataset.seq)).sort((a, b) => a - b));
}

test('a run shows live, survives a reload without a gap, and replays', async () => {
  const page = browser.pages()[0] ?? await browser.newPage();
  const session = 'dash-live-1';
  const run = startRun(session, 'SLOW: what is 17 * 23?');
  await page.goto(`${serve.url}/?session=${session}`);
  // Live: the event count rises while the run streams.
  await page.waitForFunction(() => Number(document.getElementById('event-count').textContent) > 3);
  const first = Number(await page.textContent('#event-count'));
  await page.waitForFunction((n) => Number(document.getElementById('event-count').textContent) > n + 3, first);
  assert.equal(await page.textContent('#status'), 'running');
  // Reload in the middle of the run (the tool call has not finished yet or just has).
  await page.waitForSelector('.tool-call[data-tool="calculator"]');
  await page.reload();
  await page.waitForFunction(() => document.getElementById('status').textContent === 'done', null, { timeout: 20000 });
  await run;
  assert.equal((await page.textContent('#answer')).trim(), 'The answer is 391.');
  assert.match(await page.textContent('.tool-call[data-tool="calculator"] .result'), /391/);
  assert.match(await page.textContent('#reasoning'), /The user wants a product\./);
  assert.equal(await page.$$eval('#calls tr', (rows) => rows.length), 2);
  // No gap, no duplicate: the page holds exactly the session's stored positions.
  await new Promise((r) => setTimeout(r, 500)); // the store commits the run's last events
  const stored = await storedSeqs(session);
  await page.waitForFunction((n) => document.querySelectorAll('#log div[data-seq]').length >= n, stored.length);
  assert.deepEqual(await shownSeqs(page), stored);
  assert.equal(Number(await page.textContent('#event-count')), stored.length);
  assert.ok(!(await page.content()).includes(API_KEY));
  await page.screenshot({ path: path.join(outputDir, 'dashboard-live.png'), fullPage: true });

  // Replay the stored session.
  await page.selectOption('#speed', '0');
  await page.click('#replay');
  await page.waitForFunction((s) => document.body.dataset.replayed === s, session);
  assert.equal((await page.textContent('#answer')).trim(), 'The answer is 391.');
  assert.equal(Number(await page.textContent('#event-count')), stored.length);
  await page.screenshot({ path: path.join(outputDir, 'dashboard-replay.png'), fullPage: true });
});

test('the prompt box starts a run through /ag-ui', async () => {
  const page = await browser.newPage();
  await page.goto(`${serve.url}/`);
  await page.fill('#prompt', 'What is 17 * 23?');
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'done', null, { timeout: 20000 });
  assert.equal((await page.textContent('#answer')).trim(), 'The answer is 391.');
  await page.waitForSelector('#sessions li.selected');
  await page.screenshot({ path: path.join(outputDir, 'dashboard-prompt.png'), fullPage: true });
  await page.close();
});
