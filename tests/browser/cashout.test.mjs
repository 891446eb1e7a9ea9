// Cash-out in a real browser: a verified person sends money to a bank account and the
// balance drops; an account the sandbox bank returns (ending 0000) shows its error at
// the account field, the money stays, and the account number is never echoed back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fund, launchBrowser, logInPage, login, screenshot, signup, startMizan, verify } from './harness.mjs';

const PASSWORD = 'browser test password';
/** JPMorgan Chase's ABA routing number: the checksum holds. */
const ROUTING_NUMBER = '021000021';
const ACCOUNT_SETTLES = '000123456789';
const ACCOUNT_RETURNED = '000123450000';

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

async function balanceText(page) {
  await page.goto(server.baseUrl);
  return (await page.locator('#balance').textContent()).trim();
}

async function cashOut(page, amount, account) {
  await page.goto(`${server.baseUrl}/cash-out`);
  await page.getByLabel('Amount').fill(amount);
  await page.getByLabel('Routing number').fill(ROUTING_NUMBER);
  await page.getByLabel('Account number').fill(account);
  await page.getByRole('button', { name: 'Cash out' }).click();
}

test('cash-out: verification first, then the money leaves; a returned transfer moves none', async () => {
  await signup(server.baseUrl, 'basma', PASSWORD);
  const token = await login(server.baseUrl, 'basma', PASSWORD);
  await fund(server.baseUrl, token, '100.00');
  const { context, page } = await logInPage(browser, server.baseUrl, 'basma', PASSWORD);

  // Tier 0 may not cash out at all.
  await cashOut(page, '40.00', ACCOUNT_SETTLES);
  await page.getByText('Verify your identity first to do this.').waitFor();
  assert.equal(await balanceText(page), '$100.00');

  await verify(server.baseUrl, token);
  await cashOut(page, '40.00', ACCOUNT_SETTLES);
  await page.waitForURL(`${server.baseUrl}/?done=cashout`);
  assert.equal(await page.locator('p.notice').textContent(), 'On its way to your bank.');
  assert.equal((await page.locator('#balance').textContent()).trim(), '$60.00');
  await screenshot(page, 'home-after-cashout');

  await cashOut(page, '25.00', ACCOUNT_RETURNED);
  const error = page.locator('#field-account_number-error');
  await error.waitFor();
  assert.equal(await error.textContent(), 'Your bank returned the transfer; the money is back in your wallet.');
  assert.equal(await page.getByLabel('Account number').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.getByLabel('Account number').inputValue(), '');
  const html = await page.content();
  assert.ok(!html.includes(ACCOUNT_RETURNED), 'the account number is on the page');
  assert.ok(!html.includes('123450000'), 'the account number is on the page');
  await screenshot(page, 'cash-out-returned');
  assert.equal(await balanceText(page), '$60.00');

  // The activity shows the cash-out that settled, once.
  await page.goto(`${server.baseUrl}/activity?type=cashout`);
  const settled = page.locator('ul.activity-list li', { hasText: '$40.00' });
  assert.equal(await settled.count(), 1);
  assert.match(await settled.textContent(), /Cash out.*−\$40\.00/s);
  await context.close();
});
