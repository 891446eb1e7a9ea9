// Shared set-up for the browser tests: a real `mizan serve` on a fresh data dir, Debian's
// Chromium through playwright-core, screenshots under target/, and API helpers that set
// up people and money over real HTTP. Run through scripts/browser-tests (it sets
// MIZAN_BIN and installs playwright-core).
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const targetDir = resolve(repoRoot, process.env.CARGO_TARGET_DIR || 'target');

/** A port nobody listens on right now (the kernel's pick on 127.0.0.1). */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `$MIZAN_BIN serve` on a fresh data dir and a free port, rate limits off, and
 * waits until `GET /readyz` answers 200.
 *
 * With `demo: true` the data dir is first seeded by `mizan demo --no-serve` (its
 * people, history and logins; password `DEMO_PASSWORD`).
 *
 * @param {{ config?: string[] | string, timeoutMs?: number, demo?: boolean }} [options] extra TOML lines
 * @returns {Promise<{ baseUrl: string, dataDir: string, stop: () => Promise<void> }>}
 */
export async function startMizan(options = {}) {
  const bin = process.env.MIZAN_BIN || join(targetDir, 'debug', 'mizan');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const dataDir = await mkdtemp(join(tmpdir(), 'mizan-browser-'));
  if (options.demo) {
    await promisify(execFile)(bin, ['--data-dir', dataDir, 'demo', '--no-serve'], {
      env: { ...process.env, MIZAN_LOG: 'warn' },
    });
  }
  const extra = options.config ?? [];
  const lines = [
    'rate_limit_ip_per_minute = 0',
    'rate_limit_person_per_minute = 0',
    'rate_limit_app_per_minute = 0',
    // The server screens names against the OFAC list; the default path is relative
    // to the repository root, and the browser tests run elsewhere.
    `sanctions_dir = ${JSON.stringify(join(repoRoot, 'data', 'ofac'))}`,
    ...(Array.isArray(extra) ? extra : [extra]),
  ];
  const configPath = join(dataDir, 'config.toml');
  await writeFile(configPath, lines.join('\n') + '\n');
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;

  const child = spawn(
    bin,
    ['--data-dir', dataDir, 'serve', '--listen', `127.0.0.1:${port}`, '--config', configPath],
    { env: { ...process.env, MIZAN_LOG: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  let exited = null;
  let spawnError = null;
  const exitPromise = new Promise((r) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      r(exited);
    });
    child.on('error', (error) => {
      spawnError = error;
      exited = exited ?? { code: null, signal: null };
      r(exited);
    });
  });

  // If the test process dies without calling stop(), the server must not outlive it.
  const killOnExit = () => {
    if (exited === null) child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', killOnExit);
    if (exited === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exitPromise;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited !== null) {
      await stop();
      const why = spawnError ? `could not start ${bin}: ${spawnError.message}` : `exited (${JSON.stringify(exited)})`;
      throw new Error(`mizan serve ${why} before it was ready; stderr:\n${stderr}`);
    }
    try {
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`mizan serve was not ready within ${timeoutMs} ms; stderr:\n${stderr}`);
    }
    await sleep(100);
  }
  return { baseUrl, dataDir, stop };
}

/** The password of every `mizan demo` login. */
export const DEMO_PASSWORD = 'mizan-demo-2026';

/** Debian's Chromium, headless, with nothing that phones home. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Saves a full-page PNG to target/screenshots/<name>.png and returns its path. */
export async function screenshot(page, name) {
  const dir = join(targetDir, 'screenshots');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Logs `handle` in through the web log-in form in a fresh browser context (English
 * unless `options` say otherwise); returns `{ context, page }` on the home page.
 */
export async function logInPage(browser, baseUrl, handle, password, options = {}) {
  const context = await browser.newContext({ locale: 'en-US', ...options });
  const page = await context.newPage();
  await page.goto(`${baseUrl}/login`);
  await page.getByLabel('Handle or email').fill(handle);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${baseUrl}/`);
  return { context, page };
}

/** Calls the API; throws on a non-2xx answer; returns the JSON body (or null). */
export async function call(baseUrl, method, path, { token, body, headers = {} } = {}) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  }
  return text ? JSON.parse(text) : null;
}

/** Signs a person up (`POST /v1/people`); returns the answer's JSON. */
export function signup(baseUrl, handle, password) {
  return call(baseUrl, 'POST', '/v1/people', {
    body: { handle, email: `${handle}@example.com`, password },
  });
}

/** Logs in (`POST /v1/sessions`); returns the bearer token. */
export async function login(baseUrl, handle, password) {
  const session = await call(baseUrl, 'POST', '/v1/sessions', { body: { login: handle, password } });
  if (!session || typeof session.token !== 'string') {
    throw new Error(`POST /v1/sessions answered without a token: ${JSON.stringify(session)}`);
  }
  return session.token;
}

/**
 * Verifies the person behind `token` to tier 1 (`POST /v1/me/verification`) with
 * details the sandbox provider passes, for tests that move more than tier 0 allows.
 */
export function verify(baseUrl, token) {
  return call(baseUrl, 'POST', '/v1/me/verification', {
    token,
    body: {
      legal_name: 'Test Person',
      date_of_birth: '1990-05-17',
      address: { line1: '1 Main St', city: 'Springfield', postal_code: '12345', state: 'IL', country: 'US' },
      ssn_last4: '1234',
    },
  });
}

/** Funds the person behind `token` with a test card (`POST /v1/funding`), in USD. */
export function fund(baseUrl, token, amount = '50.00') {
  return call(baseUrl, 'POST', '/v1/funding', {
    token,
    headers: { 'idempotency-key': randomUUID() },
    body: { amount: String(amount), currency: 'USD', card_number: '4242424242424242' },
  });
}
