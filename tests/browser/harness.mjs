// Shared set-up for the browser tests: a real `mizan serve` on a fresh data dir, Debian's
// Chromium through playwright-core, screenshots under target/, and API helpers that set
// up people and money over real HTTP. Run through scripts/browser-tests (it sets
// MIZAN_BIN and installs playwright-core).
//
// Importing it also makes every test of the file fail when a page it opened logged a
// console error, threw, broke the Content-Security-Policy or could not load an asset.
import { execFile, spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach } from 'node:test';
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

/** What went wrong in the pages of the running test (see `watchContext`). */
const pageProblems = [];

// A page problem fails the test it happened in (hooks at the top level of a module
// apply to every test of the file that imports it).
afterEach(() => {
  if (pageProblems.length > 0) {
    const problems = pageProblems.splice(0);
    throw new Error(`the pages reported problems:\n  ${problems.join('\n  ')}`);
  }
});

/**
 * Hands over (and clears) the page problems seen so far, for a test that causes one on
 * purpose; whatever is left when the test ends fails it.
 */
export function takePageProblems() {
  return pageProblems.splice(0);
}

/** Asset types whose failed load is a broken page (documents and fetches may be 4xx on purpose). */
const ASSET_TYPES = new Set(['stylesheet', 'script', 'image', 'font']);
/** Chromium's console line for any 4xx/5xx answer; tests post bad forms on purpose. */
const HTTP_STATUS_CONSOLE_LINE = /^Failed to load resource: the server responded with a status of \d+/;

function watchPage(page) {
  page.on('console', (message) => {
    if (message.type() !== 'error' || HTTP_STATUS_CONSOLE_LINE.test(message.text())) return;
    pageProblems.push(`console error on ${page.url()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => {
    pageProblems.push(`uncaught exception on ${page.url()}: ${error.message}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400 && ASSET_TYPES.has(response.request().resourceType())) {
      pageProblems.push(`${response.url()} answered ${response.status()}`);
    }
  });
  page.on('requestfailed', (request) => {
    if (ASSET_TYPES.has(request.resourceType())) {
      pageProblems.push(`${request.url()} failed: ${request.failure()?.errorText}`);
    }
  });
}

/** Reports every CSP violation of the context's pages, and watches each page. */
async function watchContext(context) {
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      console.error(`securitypolicyviolation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`);
    });
  });
  context.on('page', watchPage);
  return context;
}

/**
 * Debian's Chromium, headless, with nothing that phones home. Every context it makes
 * (`newContext`, and `newPage`, which makes one) is watched for page problems.
 */
export async function launchBrowser() {
  const browser = await launchChromium();
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (options) => watchContext(await newContext(options));
  return browser;
}

function launchChromium() {
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

/** The screenshots the README shows, kept in docs/screenshots/. */
const DOCS_SCREENSHOTS = new Set(['demo-home', 'demo-home-phone', 'demo-home-arabic']);

/**
 * Saves a full-page PNG to target/screenshots/<name>.png and returns its path. With
 * `MIZAN_UPDATE_DOCS=1` the README's screenshots are copied to docs/screenshots/ too.
 */
export async function screenshot(page, name) {
  const dir = join(targetDir, 'screenshots');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  if (process.env.MIZAN_UPDATE_DOCS === '1' && DOCS_SCREENSHOTS.has(name)) {
    await copyFile(path, join(repoRoot, 'docs', 'screenshots', `${name}.png`));
  }
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

/** Decodes RFC 4648 base32 (no padding needed), as authenticator apps read a TOTP key. */
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const bytes = [];
  for (const char of text.replace(/[\s=]/g, '').toUpperCase()) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error(`not base32: ${JSON.stringify(char)}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/**
 * The 6-digit TOTP code (RFC 6238: HMAC-SHA1, 30-second steps) of a base32 key at
 * `timeMs`, computed independently of the server.
 */
export function totpCode(secretBase32, timeMs = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(timeMs / 1000 / 30)));
  const digest = createHmac('sha1', base32Decode(secretBase32)).update(counter).digest();
  const offset = digest[digest.length - 1] & 0x0f;
  const number = digest.readUInt32BE(offset) & 0x7fffffff;
  return String(number % 1_000_000).padStart(6, '0');
}
