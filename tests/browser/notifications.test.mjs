// Notifications in the browser: a payment to an open page bumps the unread badge
// live; the notifications page lists it as a sentence linking to the receipt and
// clears the badge; a request arriving later counts again on the next page load.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, fund, launchBrowser, login, screenshot, signup, startMizan } from './harness.mjs';

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

test('a payment shows up live in the badge and as a notification', async () => {
  await signup(server.baseUrl, 'nadia', PASSWORD);
  await signup(server.baseUrl, 'karim', PASSWORD);
  const karim = await login(server.baseUrl, 'karim', PASSWORD);
  await fund(server.baseUrl, karim, '30.00');

  const context = await browser.newContext({ locale: 'en-US' });
  const page = await context.newPage();
  await page.goto(`${server.baseUrl}/login`);
  await page.getByLabel('Handle or email').fill('nadia');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${server.baseUrl}/`);
  const badge = page.locator('#unread-count');
  assert.equal(await badge.isHidden(), true);

  const payment = await call(server.baseUrl, 'POST', '/v1/payments', {
    token: karim,
    headers: { 'idempotency-key': 'notify-pay-1' },
    body: { to: 'nadia', amount: '12.00', currency: 'USD', note: 'books' },
  });
  await page.waitForFunction(
    () => document.querySelector('#unread-count')?.textContent.trim() === '1',
    null,
    { timeout: 10_000 },
  );
  assert.equal(await badge.isVisible(), true);

  await page.getByRole('link', { name: /Notifications/ }).click();
  await page.waitForURL(`${server.baseUrl}/notifications`);
  const first = page.locator('#notifications li').first();
  assert.equal(await first.getAttribute('data-kind'), 'payment_received');
  assert.match(await first.textContent(), /@karim sent you \$12\.00/);
  assert.doesNotMatch(await first.textContent(), /books/);
  assert.equal(await first.getAttribute('class'), 'notification unread');
  await screenshot(page, 'notifications');
  assert.equal(await badge.isHidden(), true);

  // Seen: a reload shows it read, and the badge stays at zero.
  await page.reload();
  assert.equal(await page.locator('#notifications li').first().getAttribute('class'), 'notification');
  await first.getByRole('link').click();
  await page.waitForURL(`${server.baseUrl}/receipts/${payment.id}`);

  await call(server.baseUrl, 'POST', '/v1/requests', {
    token: karim,
    headers: { 'idempotency-key': 'notify-request-1' },
    body: { from: 'nadia', amount: '4.00', currency: 'USD' },
  });
  // The list is projected from the outbox in the background: wait for it.
  for (let attempt = 0; ; attempt += 1) {
    await page.goto(server.baseUrl);
    if ((await badge.textContent()).trim() === '1' && (await badge.isVisible())) break;
    assert.ok(attempt < 50, 'the request never counted as unread');
    await page.waitForTimeout(100);
  }
  await page.goto(`${server.baseUrl}/notifications`);
  assert.match(
    await page.locator('#notifications li').first().textContent(),
    /@karim asks you for \$4\.00/,
  );
  await context.close();
});
