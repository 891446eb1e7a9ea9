// Paid DMs in the browser: a star charges for messages; a fan pays and the star's
// reply pays the star (less the cut); another fan's unanswered DM is refunded by the
// ledger at the deadline (3 s here), and the sender sees each status.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fund, launchBrowser, logInPage, login, screenshot, signup, startMizan } from './harness.mjs';

const PASSWORD = 'browser test password';

let server;
let browser;

before(async () => {
  server = await startMizan({ config: ['paid_dm_timeout_seconds = 3'] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

function signedIn(handle, options = {}) {
  return logInPage(browser, server.baseUrl, handle, PASSWORD, options);
}

async function balance(page) {
  await page.goto(server.baseUrl);
  return (await page.locator('#balance').textContent()).trim();
}

/** Writes to `to` and pays the price the page asks for. */
async function payAndSend(page, to, text) {
  await page.goto(`${server.baseUrl}/messages/${to}`);
  await page.getByLabel('Message').fill(text);
  await page.getByRole('button', { name: 'Send message' }).click();
  await page.getByText('Messaging this person costs $5.00').waitFor();
  await page.getByRole('button', { name: 'Pay and send $5.00' }).click();
  await page.waitForURL(`${server.baseUrl}/messages/${to}`);
}

test('a paid DM is paid out when answered and refunded when not', async () => {
  await signup(server.baseUrl, 'star', PASSWORD);
  for (const fan of ['fan_a', 'fan_b']) {
    await signup(server.baseUrl, fan, PASSWORD);
    await fund(server.baseUrl, await login(server.baseUrl, fan, PASSWORD), '20.00');
  }
  const star = await signedIn('star');
  await star.page.goto(`${server.baseUrl}/messages`);
  await star.page.getByLabel('Price to message you').fill('5.00');
  await star.page.getByRole('button', { name: 'Save' }).click();
  await star.page.waitForURL(`${server.baseUrl}/messages`);

  const fanA = await signedIn('fan_a');
  await payAndSend(fanA.page, 'star', 'Would you review my portfolio?');
  assert.equal(await fanA.page.locator('.dm-status').textContent(), 'waiting for an answer');
  await screenshot(fanA.page, 'paid-dm-sent');
  assert.equal(await balance(fanA.page), '$15.00');

  await star.page.goto(`${server.baseUrl}/messages`);
  const waiting = star.page.locator('section[aria-labelledby=priority-title] li');
  assert.match(await waiting.first().textContent(), /@fan_a.*\$5\.00.*waiting for an answer/s);
  await screenshot(star.page, 'priority-inbox');
  await star.page.getByRole('link', { name: '@fan_a' }).first().click();
  await star.page.getByLabel('Message').fill('Sure, send it over!');
  await star.page.getByRole('button', { name: 'Send message' }).click();
  await star.page.waitForURL(`${server.baseUrl}/messages/fan_a`);
  assert.equal(await balance(star.page), '$4.50', 'the price less the 10% cut');

  await fanA.page.goto(`${server.baseUrl}/messages/star`);
  assert.equal(await fanA.page.locator('.dm-status').textContent(), 'answered and paid');
  await screenshot(fanA.page, 'paid-dm-answered');

  const fanB = await signedIn('fan_b');
  await payAndSend(fanB.page, 'star', 'Big fan! Please reply');
  assert.equal(await balance(fanB.page), '$15.00');
  // Nobody answers: after the deadline the ledger itself refunds the hold.
  let status = '';
  for (let i = 0; i < 40 && status !== 'not answered in time, refunded'; i += 1) {
    await new Promise((r) => setTimeout(r, 250));
    await fanB.page.goto(`${server.baseUrl}/messages/star`);
    status = await fanB.page.locator('.dm-status').textContent();
  }
  assert.equal(status, 'not answered in time, refunded');
  assert.equal(await balance(fanB.page), '$20.00');
  assert.equal(await balance(star.page), '$4.50');
  for (const party of [star, fanA, fanB]) await party.context.close();
});
