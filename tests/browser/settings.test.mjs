// Settings and linked apps in a real browser: two-factor set-up with a code computed
// here from the key the page shows (a mistyped code keeps the same key), and an app
// linked through its API that the person approves and then revokes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, launchBrowser, logInPage, screenshot, signup, startMizan, totpCode } from './harness.mjs';

const PASSWORD = 'browser test password';
const OPERATOR_TOKEN = 'browser-test-operator-token-0123456789';

let server;
let browser;

before(async () => {
  server = await startMizan({ config: `operator_token = ${JSON.stringify(OPERATOR_TOKEN)}` });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A 6-digit code that is not `code`. */
function wrongCode(code) {
  return String((Number(code) + 500_000) % 1_000_000).padStart(6, '0');
}

test('two-factor set-up: a wrong code keeps the same key, the right one turns it on', async () => {
  await signup(server.baseUrl, 'zain', PASSWORD);
  const { context, page } = await logInPage(browser, server.baseUrl, 'zain', PASSWORD);
  await page.goto(`${server.baseUrl}/settings`);
  await page.getByRole('button', { name: 'Set up two-factor' }).click();
  const secret = (await page.locator('#totp-secret').textContent()).trim();
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  await screenshot(page, 'settings-two-factor');

  await page.getByLabel('Authenticator code').fill(wrongCode(totpCode(secret)));
  await page.getByRole('button', { name: 'Confirm' }).click();
  const error = page.locator('#field-code-error');
  await error.waitFor();
  assert.equal(await error.textContent(), 'That code is wrong or already used.');
  assert.equal(await page.getByLabel('Authenticator code').getAttribute('aria-invalid'), 'true');
  // The same key, still waiting for its first code: no second set-up needed.
  assert.equal((await page.locator('#totp-secret').textContent()).trim(), secret);

  await page.getByLabel('Authenticator code').fill(totpCode(secret));
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForURL(`${server.baseUrl}/settings?done=totp`);
  assert.equal(await page.locator('p.notice').textContent(), 'Two-factor authentication is on.');
  assert.match(await page.locator('section[aria-labelledby=two-factor]').textContent(), /On: large payments ask/);
  assert.equal(await page.locator('#totp-secret').count(), 0);
  await context.close();
});

test('a linked app is approved on the apps page and revoked there, which stops it', async () => {
  await signup(server.baseUrl, 'nour', PASSWORD);
  const app = await call(server.baseUrl, 'POST', '/v1/apps', {
    token: OPERATOR_TOKEN,
    body: { name: 'Souq Market' },
  });
  await call(server.baseUrl, 'POST', '/v1/app/link-requests', {
    token: app.api_key,
    body: { handle: 'nour', external_user_id: 'souq-nour', scopes: ['wallet:read'] },
  });
  const appToken = () =>
    fetch(`${server.baseUrl}/v1/app/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${app.api_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ external_user_id: 'souq-nour', scopes: ['wallet:read'] }),
    });

  const { context, page } = await logInPage(browser, server.baseUrl, 'nour', PASSWORD);
  await page.goto(`${server.baseUrl}/apps`);
  const pending = page.locator('section[aria-labelledby=link-requests] li', { hasText: 'Souq Market' });
  assert.match(await pending.textContent(), /wallet:read/);
  await pending.getByRole('button', { name: 'Approve' }).click();
  await page.waitForURL(`${server.baseUrl}/apps`);
  assert.equal(await page.locator('section[aria-labelledby=link-requests]').count(), 0);
  assert.equal((await appToken()).status, 201);
  await screenshot(page, 'apps');

  await page.getByRole('button', { name: 'Revoke Souq Market' }).click();
  await page.waitForURL(`${server.baseUrl}/apps`);
  assert.equal(await page.getByRole('button', { name: 'Revoke Souq Market' }).count(), 0);
  assert.equal(await page.locator('main p', { hasText: 'No apps' }).count(), 1);
  // The app can no longer act for Nour.
  const refused = await appToken();
  assert.equal(refused.status, 404);
  assert.equal((await refused.json()).code, 'link_not_found');
  await context.close();
});
