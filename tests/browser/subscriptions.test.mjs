// Subscriptions in the browser: a creator makes a tier and a subscriber-only post; a
// fan sees the post locked on the creator's profile, subscribes from the profile
// (confirm page, paid from the wallet), then reads the post; "Your subscriptions"
// lists it and cancels it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fund, launchBrowser, logInPage, login, screenshot, signup, startMizan } from './harness.mjs';

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

test('a fan subscribes from a profile and then reads a subscriber-only post', async () => {
  await signup(server.baseUrl, 'noor_writes', PASSWORD);
  await signup(server.baseUrl, 'reader_one', PASSWORD);
  await fund(server.baseUrl, await login(server.baseUrl, 'reader_one', PASSWORD), '20.00');

  const creator = await signedIn('noor_writes');
  await creator.page.goto(`${server.baseUrl}/subscriptions/tiers`);
  await creator.page.getByLabel('Tier name').fill('Inner circle');
  await creator.page.getByLabel('Price a month (USD)').fill('4.00');
  await creator.page.getByLabel('Perks (optional)').fill('Drafts before anyone else');
  await creator.page.getByRole('button', { name: 'Create tier' }).click();
  await creator.page.waitForURL(`${server.baseUrl}/subscriptions/tiers`);
  await creator.page.getByText('Inner circle').waitFor();
  await creator.page.goto(`${server.baseUrl}/feed`);
  await creator.page.getByLabel('Write a post').fill('Chapter two, for my subscribers');
  await creator.page.getByLabel('Only my subscribers may read this post').check();
  await creator.page.getByRole('button', { name: 'Post', exact: true }).click();
  await creator.page.waitForURL(/\/posts\/[0-9a-f]{32}$/);
  await creator.page.getByText('Chapter two, for my subscribers').waitFor();

  const fan = await signedIn('reader_one');
  await fan.page.goto(`${server.baseUrl}/people/noor_writes`);
  const post = fan.page.locator('article.post').first();
  await post.getByText('Subscribe to read it').waitFor();
  assert.ok(!(await post.textContent()).includes('Chapter two'), 'locked before subscribing');
  await screenshot(fan.page, 'subscription-locked');
  await fan.page.getByRole('link', { name: 'Subscribe', exact: true }).click();
  await fan.page.waitForURL(/\/subscribe\/[0-9a-f]{32}$/);
  await fan.page.getByText('Inner circle').waitFor();
  await screenshot(fan.page, 'subscription-confirm');
  await fan.page.getByRole('button', { name: 'Subscribe and pay' }).click();
  await fan.page.waitForURL(`${server.baseUrl}/people/noor_writes?done=subscribed`);
  await fan.page.getByText('You are subscribed.').waitFor();
  await fan.page.locator('article.post').first().getByText('Chapter two, for my subscribers').waitFor();
  await screenshot(fan.page, 'subscription-unlocked');

  await fan.page.goto(server.baseUrl);
  assert.equal((await fan.page.locator('#balance').textContent()).trim(), '$16.00');

  await fan.page.goto(`${server.baseUrl}/subscriptions`);
  const line = fan.page.locator('li.subscription');
  assert.match(await line.textContent(), /@noor_writes · Inner circle/);
  assert.match(await line.textContent(), /Renews on/);
  await fan.page.getByRole('button', { name: 'Cancel subscription' }).click();
  await fan.page.waitForURL(`${server.baseUrl}/subscriptions?done=canceled`);
  assert.match(await fan.page.locator('li.subscription').textContent(), /Ends on/);
  // Canceled, it still reads until the period it paid for ends.
  await fan.page.goto(`${server.baseUrl}/people/noor_writes`);
  await fan.page.getByText('Chapter two, for my subscribers').waitFor();

  await creator.page.goto(`${server.baseUrl}/subscriptions/subscribers`);
  await creator.page.getByText('@reader_one').waitFor();
  await fan.context.close();
  await creator.context.close();
});
