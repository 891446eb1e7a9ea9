// Money inside a conversation: from a thread, "Send money" opens the send form for
// that person; the payment then shows in both people's thread as a card, in time
// order with the messages, linking to its receipt; "Request money" is filled in too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fund, launchBrowser, logInPage, login, signup, startMizan } from './harness.mjs';

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

function signedIn(handle, options = {}) {
  return logInPage(browser, server.baseUrl, handle, PASSWORD, options);
}

test('a payment sent from a conversation shows in it as a card for both', async () => {
  await signup(server.baseUrl, 'lina', PASSWORD);
  await signup(server.baseUrl, 'rami', PASSWORD);
  await fund(server.baseUrl, await login(server.baseUrl, 'rami', PASSWORD), '40.00');
  const rami = await signedIn('rami');
  const page = rami.page;

  await page.goto(`${server.baseUrl}/messages/lina`);
  await page.getByLabel('Message').fill('Dinner was great, sending my half');
  await page.getByRole('button', { name: 'Send message' }).click();
  await page.waitForURL(`${server.baseUrl}/messages/lina`);

  await page.getByRole('link', { name: 'Send money' }).last().click();
  await page.waitForURL(`${server.baseUrl}/send?to=lina`);
  assert.equal(await page.getByLabel('To').inputValue(), 'lina');
  await page.getByLabel('Amount').fill('15.00');
  await page.getByLabel('Note (optional)').fill('dinner');
  await page.getByRole('button', { name: 'Send money' }).click();
  await page.waitForURL(/\/receipts\/[0-9a-f]{32}\?done=sent$/);
  const receipt = new URL(page.url()).pathname;

  await page.goto(`${server.baseUrl}/messages/lina`);
  const entries = page.locator('ol.thread > li');
  assert.equal(await entries.count(), 2);
  assert.match(await entries.nth(0).textContent(), /Dinner was great/);
  const card = entries.nth(1);
  assert.match(await card.getAttribute('class'), /payment-card/);
  assert.match(await card.textContent(), /You sent \$15\.00 · dinner/);
  assert.equal(await card.getByRole('link', { name: 'Receipt' }).getAttribute('href'), receipt);

  await page.getByRole('link', { name: 'Request money' }).click();
  await page.waitForURL(`${server.baseUrl}/request?from=lina`);
  assert.equal(await page.getByLabel('From').inputValue(), 'lina');

  const lina = await signedIn('lina');
  await lina.page.goto(`${server.baseUrl}/messages/rami`);
  const linaCard = lina.page.locator('ol.thread > li.payment-card');
  assert.match(await linaCard.textContent(), /Sent you \$15\.00 · dinner/);
  await rami.context.close();
  await lina.context.close();
});
