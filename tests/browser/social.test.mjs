// Tips in the browser: a creator posts, a fan follows them, finds the post in their
// feed and tips it with one click on a preset amount; the post counts the tip and
// shows the public note, and the creator is told live.
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

test('a fan follows a creator and tips their post with one click', async () => {
  await signup(server.baseUrl, 'lina_draws', PASSWORD);
  await signup(server.baseUrl, 'fan_one', PASSWORD);
  await fund(server.baseUrl, await login(server.baseUrl, 'fan_one', PASSWORD), '20.00');

  const creator = await signedIn('lina_draws');
  await creator.page.goto(`${server.baseUrl}/feed`);
  await creator.page.getByLabel('Write a post').fill('New drawing: the old souq at dawn');
  await creator.page.getByRole('button', { name: 'Post', exact: true }).click();
  await creator.page.waitForURL(/\/posts\/[0-9a-f]{32}$/);
  const postUrl = creator.page.url();
  await creator.page.goto(server.baseUrl);

  const fan = await signedIn('fan_one');
  await fan.page.goto(`${server.baseUrl}/people/lina_draws`);
  await fan.page.getByRole('button', { name: 'Follow' }).click();
  await fan.page.getByRole('button', { name: 'Unfollow' }).waitFor();
  assert.match(await fan.page.locator('.counts').textContent(), /^1 followers/);
  await fan.page.goto(`${server.baseUrl}/feed`);
  await fan.page.getByText('New drawing: the old souq at dawn').waitFor();
  await screenshot(fan.page, 'feed');
  await fan.page.getByRole('link', { name: /Tip this post/ }).first().click();
  await fan.page.waitForURL(postUrl);
  await fan.page.getByLabel('Note (optional)').fill('Beautiful light!');
  await fan.page.getByLabel(/Show my note publicly/).check();
  await screenshot(fan.page, 'tip-post');
  await fan.page.getByRole('button', { name: '$3.00' }).click();
  await fan.page.waitForURL(`${postUrl}?done=tipped`);
  assert.equal(await fan.page.locator('.tip-count').textContent(), '1');
  assert.match(await fan.page.locator('ul.notes').textContent(), /@fan_one: Beautiful light!/);
  // The post shows how many tips, never how much.
  assert.ok(!(await fan.page.locator('article.post').textContent()).includes('3.00'));

  await creator.page
    .locator('#toast', { hasText: '@fan_one tipped you $3.00' })
    .waitFor({ timeout: 10_000 });
  await creator.page.waitForFunction(
    () => document.querySelector('#balance')?.textContent.trim() === '$3.00',
    null,
    { timeout: 10_000 },
  );
  await fan.page.goto(server.baseUrl);
  assert.equal((await fan.page.locator('#balance').textContent()).trim(), '$17.00');
  await fan.context.close();
  await creator.context.close();
});

// A double-clicked form without the script is submitted twice: the browser drops the
// first navigation (ERR_ABORTED) for the second, which is the one to wait for.
async function waitForPostPage(page) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      await page.waitForURL(/\/posts\/[0-9a-f]{32}$/);
      return;
    } catch (error) {
      if (attempt >= 2 || !String(error).includes('ERR_ABORTED')) throw error;
    }
  }
}

test('double-clicking Post publishes one post, with or without the script', async () => {
  await signup(server.baseUrl, 'nour_writes', PASSWORD);
  for (const javaScriptEnabled of [true, false]) {
    const { context, page } = await signedIn('nour_writes', { javaScriptEnabled });
    await page.goto(`${server.baseUrl}/feed`);
    await page.getByLabel('Write a post').fill(`Once only (script ${javaScriptEnabled})`);
    await page.getByRole('button', { name: 'Post', exact: true }).dblclick();
    await waitForPostPage(page);
    await context.close();
  }
  const token = await login(server.baseUrl, 'nour_writes', PASSWORD);
  const response = await fetch(`${server.baseUrl}/v1/people/nour_writes/posts`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const { items } = await response.json();
  assert.deepEqual(
    items.map((post) => post.text).sort(),
    ['Once only (script false)', 'Once only (script true)'],
    'two double clicks should publish two posts',
  );
});
