// Checkout cards in a conversation: the buyer writes, the seller posts a card (item,
// price, quantity) from the thread page, the buyer pays it with one click and finds
// the order on /orders; the card then shows what is left, and the seller sees the sale.
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

function signedIn(handle) {
  return logInPage(browser, server.baseUrl, handle, PASSWORD);
}

test('a seller posts a card in a DM and the buyer pays it with one click', async () => {
  await signup(server.baseUrl, 'potter', PASSWORD);
  await signup(server.baseUrl, 'dana', PASSWORD);
  await fund(server.baseUrl, await login(server.baseUrl, 'dana', PASSWORD), '40.00');

  const dana = await signedIn('dana');
  await dana.page.goto(`${server.baseUrl}/messages/potter`);
  await dana.page.getByLabel('Message').fill('Do you still have the blue mugs?');
  await dana.page.getByRole('button', { name: 'Send message' }).click();
  await dana.page.waitForURL(`${server.baseUrl}/messages/potter`);

  const potter = await signedIn('potter');
  const seller = potter.page;
  await seller.goto(`${server.baseUrl}/messages/dana`);
  await seller.getByText('Sell something here').click();
  await seller.getByLabel('Item').fill('Blue mug');
  await seller.getByLabel('Price each').fill('12.50');
  await seller.getByLabel('Quantity available').fill('2');
  await seller.getByRole('button', { name: 'Post checkout card' }).click();
  await seller.waitForURL(`${server.baseUrl}/messages/dana`);
  const sellerCard = seller.locator('ol.thread > li.checkout-card');
  assert.match(await sellerCard.textContent(), /Blue mug/);
  assert.equal(await sellerCard.getByRole('button').count(), 0, 'no pay button for the seller');

  const buyer = dana.page;
  await buyer.goto(`${server.baseUrl}/messages/potter`);
  const card = buyer.locator('ol.thread > li.checkout-card');
  assert.match(await card.textContent(), /Blue mug/);
  assert.match(await card.textContent(), /2 left/);
  await card.getByRole('button', { name: /Pay \$12\.50/ }).click();
  await buyer.waitForURL(`${server.baseUrl}/orders?done=paid`);
  const order = buyer.locator('li.order');
  assert.equal(await order.count(), 1);
  assert.match(await order.textContent(), /You bought\s+@potter · Blue mug × 1 · \$12\.50/);

  await buyer.goto(`${server.baseUrl}/messages/potter`);
  assert.match(await buyer.locator('li.checkout-card').textContent(), /1 left/);
  await buyer.goto(`${server.baseUrl}/`);
  assert.match(await buyer.locator('body').textContent(), /\$27\.50/);

  await seller.goto(`${server.baseUrl}/orders`);
  assert.match(await seller.locator('li.order').textContent(), /You sold\s+@dana · Blue mug × 1/);
  await dana.context.close();
  await potter.context.close();
});
