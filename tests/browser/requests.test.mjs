// Requests in a real browser: asking someone for money, the other person paying one
// request and declining another, splitting a bill, and a person with two-factor on
// who pays a small request without a code and a large one with it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, fund, launchBrowser, logInPage, login, screenshot, signup, startMizan, totpCode } from './harness.mjs';

const PASSWORD = 'browser test password';

let server;
let browser;

before(async () => {
  server = await startMizan();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

function signedIn(handle) {
  return logInPage(browser, server.baseUrl, handle, PASSWORD);
}

async function balanceText(page) {
  await page.goto(server.baseUrl);
  return (await page.locator('#balance').textContent()).trim();
}

/** The row of a request waiting for the signed-in person, by its note. */
function toPay(page, note) {
  return page.locator('section[aria-labelledby=to-pay] li.request', { hasText: note });
}

/** The row of a request the signed-in person made, by its note. */
function asked(page, note) {
  return page.locator('section[aria-labelledby=asked] li.request', { hasText: note });
}

async function ask(page, from, amount, note) {
  await page.goto(`${server.baseUrl}/request`);
  await page.getByLabel('From').fill(from);
  await page.getByLabel('Amount').fill(amount);
  await page.getByLabel('Note (optional)').fill(note);
  await page.getByRole('button', { name: 'Send request' }).click();
  await page.waitForURL(`${server.baseUrl}/requests?done=requested`);
}

test('a request is asked for, paid by the other person, and another one declined', async () => {
  await signup(server.baseUrl, 'rana', PASSWORD);
  await signup(server.baseUrl, 'sami', PASSWORD);
  await fund(server.baseUrl, await login(server.baseUrl, 'sami', PASSWORD), '50.00');

  const rana = await signedIn('rana');
  await ask(rana.page, '@sami', '12.00', 'lunch 🥙');
  await ask(rana.page, 'sami', '5.00', 'parking');
  assert.match(await asked(rana.page, 'lunch').textContent(), /@sami.*\$12\.00.*Open/s);

  const sami = await signedIn('sami');
  await sami.page.goto(`${server.baseUrl}/requests`);
  assert.match(await toPay(sami.page, 'lunch').textContent(), /@rana.*\$12\.00.*Open/s);
  await screenshot(sami.page, 'requests');
  await toPay(sami.page, 'lunch').getByRole('button', { name: 'Pay' }).click();
  await sami.page.waitForURL(/\/receipts\/[0-9a-f]{32}\?done=sent$/);
  const receipt = await sami.page.locator('dl.receipt').textContent();
  assert.match(receipt, /@sami.*@rana.*\$12\.00.*lunch 🥙/s);

  await sami.page.goto(`${server.baseUrl}/requests`);
  await toPay(sami.page, 'parking').getByRole('button', { name: 'Decline' }).click();
  await sami.page.waitForURL(`${server.baseUrl}/requests`);
  assert.match(await toPay(sami.page, 'parking').locator('.status').textContent(), /Declined/);
  assert.match(await toPay(sami.page, 'lunch').locator('.status').textContent(), /Paid/);
  // A closed request offers nothing more to do.
  assert.equal(await toPay(sami.page, 'parking').locator('form').count(), 0);
  assert.equal(await balanceText(sami.page), '$38.00');

  await rana.page.goto(`${server.baseUrl}/requests`);
  assert.match(await asked(rana.page, 'lunch').locator('.status').textContent(), /Paid/);
  assert.match(await asked(rana.page, 'parking').locator('.status').textContent(), /Declined/);
  assert.equal(await balanceText(rana.page), '$12.00');
  await rana.context.close();
  await sami.context.close();
});

test('a bill split with two people asks each of them for an equal share', async () => {
  await signup(server.baseUrl, 'tala', PASSWORD);
  await signup(server.baseUrl, 'umar', PASSWORD);
  await signup(server.baseUrl, 'vida', PASSWORD);
  await fund(server.baseUrl, await login(server.baseUrl, 'umar', PASSWORD), '20.00');

  const tala = await signedIn('tala');
  await tala.page.goto(`${server.baseUrl}/split`);
  await tala.page.getByLabel('People to split with').fill('@umar, vida');
  await tala.page.getByLabel('Total you paid').fill('30.00');
  await tala.page.getByLabel('Note (optional)').fill('pizza night 🍕');
  await screenshot(tala.page, 'split');
  await tala.page.getByRole('button', { name: 'Split equally' }).click();
  await tala.page.waitForURL(`${server.baseUrl}/requests?done=split`);
  assert.equal(await tala.page.locator('p.notice').textContent(), 'Requests sent to everyone.');
  const rows = asked(tala.page, 'pizza night');
  assert.equal(await rows.count(), 2);
  assert.match(await rows.filter({ hasText: '@umar' }).textContent(), /\$15\.00.*Open/s);
  assert.match(await rows.filter({ hasText: '@vida' }).textContent(), /\$15\.00.*Open/s);

  const umar = await signedIn('umar');
  await umar.page.goto(`${server.baseUrl}/requests`);
  await toPay(umar.page, 'pizza night').getByRole('button', { name: 'Pay' }).click();
  await umar.page.waitForURL(/\/receipts\/[0-9a-f]{32}\?done=sent$/);
  assert.equal(await balanceText(umar.page), '$5.00');

  await tala.page.goto(`${server.baseUrl}/requests`);
  assert.match(await rows.filter({ hasText: '@umar' }).locator('.status').textContent(), /Paid/);
  assert.match(await rows.filter({ hasText: '@vida' }).locator('.status').textContent(), /Open/);
  assert.equal(await balanceText(tala.page), '$15.00');
  await tala.context.close();
  await umar.context.close();
});

test('with two-factor on, a small request is paid without a code and a large one asks for it', async () => {
  await signup(server.baseUrl, 'wafa', PASSWORD);
  await signup(server.baseUrl, 'yara', PASSWORD);
  const wafaToken = await login(server.baseUrl, 'wafa', PASSWORD);
  await fund(server.baseUrl, wafaToken, '200.00');
  const { secret } = await call(server.baseUrl, 'POST', '/v1/me/totp', { token: wafaToken, body: {} });
  await call(server.baseUrl, 'POST', '/v1/me/totp/confirm', {
    token: wafaToken,
    body: { code: totpCode(secret) },
  });
  const yaraToken = await login(server.baseUrl, 'yara', PASSWORD);
  const request = (amount, note) =>
    call(server.baseUrl, 'POST', '/v1/requests', {
      token: yaraToken,
      headers: { 'idempotency-key': `browser-${note}` },
      body: { from: 'wafa', amount, currency: 'USD', note },
    });
  const small = await request('3.00', 'coffee');
  const large = await request('120.00', 'flights');

  const wafa = await signedIn('wafa');
  const { page } = wafa;
  await page.goto(`${server.baseUrl}/requests`);
  // One code field per open request, each with its own id, none required.
  const ids = await page.locator('[id]').evaluateAll((nodes) => nodes.map((node) => node.id));
  assert.equal(new Set(ids).size, ids.length, `repeated ids: ${ids}`);
  const smallCode = page.locator(`#field-code-${small.id}`);
  assert.equal(await smallCode.getAttribute('name'), 'code');
  assert.equal(await smallCode.getAttribute('required'), null);
  assert.equal(await page.locator(`#field-code-${large.id}`).getAttribute('required'), null);
  assert.equal(await toPay(page, 'coffee').getByLabel('Authenticator code').count(), 1);

  await toPay(page, 'coffee').getByRole('button', { name: 'Pay' }).click();
  await page.waitForURL(/\/receipts\/[0-9a-f]{32}\?done=sent$/);
  assert.match(await page.locator('dl.receipt').textContent(), /\$3\.00/);

  // $120 is over the step-up threshold ($100): without a code it is refused at the field.
  await page.goto(`${server.baseUrl}/requests`);
  await toPay(page, 'flights').getByRole('button', { name: 'Pay' }).click();
  const error = page.locator(`#field-code-${large.id}-error`);
  await error.waitFor();
  assert.equal(await error.textContent(), 'This amount needs a code from your authenticator app.');
  assert.equal(await page.locator(`#field-code-${large.id}`).getAttribute('aria-invalid'), 'true');
  assert.match(await toPay(page, 'flights').locator('.status').textContent(), /Open/);
  assert.equal(await balanceText(page), '$197.00');

  await page.goto(`${server.baseUrl}/requests`);
  // The next time step's code: the confirm above used this step's.
  await page.locator(`#field-code-${large.id}`).fill(totpCode(secret, Date.now() + 30_000));
  await toPay(page, 'flights').getByRole('button', { name: 'Pay' }).click();
  await page.waitForURL(/\/receipts\/[0-9a-f]{32}\?done=sent$/);
  assert.match(await page.locator('dl.receipt').textContent(), /\$120\.00/);
  assert.equal(await balanceText(page), '$77.00');
  await wafa.context.close();
});
