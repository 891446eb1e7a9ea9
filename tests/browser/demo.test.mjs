// `mizan demo`'s data in the browser: a demo person logs in and finds months of
// history, requests waiting for them and a linked app. Its screenshots are the ones
// docs/screenshots/ keeps for the README.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO_PASSWORD, launchBrowser, screenshot, startMizan } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startMizan({ demo: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a demo person finds months of history, open requests and a linked app', async () => {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1024, height: 768 } });
  const page = await context.newPage();
  await page.goto(`${server.baseUrl}/login`);
  await page.getByLabel('Handle or email').fill('amina@demo.mizan.test');
  await page.getByLabel('Password').fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${server.baseUrl}/`);
  assert.match(await page.locator('#balance').textContent(), /^\$[\d,]+\.\d\d$/);
  assert.ok((await page.locator('#recent li').count()) >= 3);
  await screenshot(page, 'demo-home');

  // Walk the activity back page by page: it reaches at least two months ago.
  await page.goto(`${server.baseUrl}/activity`);
  await screenshot(page, 'demo-activity');
  let oldest = Date.now();
  for (let pages = 0; pages < 40; pages += 1) {
    const times = await page.locator('ul.activity-list time').evaluateAll((nodes) =>
      nodes.map((node) => Date.parse(node.getAttribute('datetime'))),
    );
    oldest = Math.min(oldest, ...times);
    const older = page.getByRole('link', { name: 'Older' });
    if ((await older.count()) === 0) break;
    await older.click();
  }
  const days = (Date.now() - oldest) / 86_400_000;
  assert.ok(days > 60, `the oldest activity is only ${days.toFixed(1)} days old`);

  await page.goto(`${server.baseUrl}/requests`);
  const waiting = page.locator('section[aria-labelledby=to-pay] li.request');
  assert.ok((await waiting.count()) >= 2);
  await screenshot(page, 'demo-requests');

  await page.goto(`${server.baseUrl}/apps`);
  assert.match(await page.locator('main').textContent(), /Souq Market/);

  await page.getByRole('link', { name: 'العربية' }).click();
  await page.waitForFunction(() => document.documentElement.dir === 'rtl');
  await page.goto(`${server.baseUrl}/`);
  await screenshot(page, 'demo-home-arabic');

  const phone = await browser.newContext({
    locale: 'en-US',
    viewport: { width: 390, height: 844 },
    isMobile: true,
  });
  const mobile = await phone.newPage();
  await mobile.goto(`${server.baseUrl}/login`);
  await mobile.getByLabel('Handle or email').fill('bilal');
  await mobile.getByLabel('Password').fill(DEMO_PASSWORD);
  await mobile.getByRole('button', { name: 'Log in' }).click();
  await mobile.waitForURL(`${server.baseUrl}/`);
  // Nothing overflows sideways on a phone.
  const overflow = await mobile.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await screenshot(mobile, 'demo-home-phone');
  await phone.close();
  await context.close();
});
