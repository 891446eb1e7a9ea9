// Smoke test: a real `mizan serve`, Debian's Chromium, the API docs page and the home page.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, screenshot, startMizan } from './harness.mjs';

let mizan;
let browser;

before(async () => {
  mizan = await startMizan();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await mizan?.stop();
});

test('the API docs page loads and lists the operations from /v1/openapi.json', async () => {
  const page = await browser.newPage();
  try {
    const response = await page.goto(`${mizan.baseUrl}/v1/docs`);
    assert.equal(response.status(), 200);
    assert.equal(await page.title(), 'Mizan API');
    // The page's script fetches the spec and renders one box per operation.
    await page.locator('#operations .op').first().waitFor();
    assert.ok((await page.locator('#operations .op').count()) > 10);
    assert.match(await page.locator('#operations').innerText(), /\/v1\/payments/);
    assert.match(await page.locator('#title').innerText(), /^Mizan/);
    await screenshot(page, 'smoke-docs');
  } finally {
    await page.close();
  }
});

test('the home page answers with the app name as its heading', async () => {
  const page = await browser.newPage();
  try {
    const response = await page.goto(`${mizan.baseUrl}/`);
    assert.equal(response.status(), 200);
    assert.equal((await page.locator('h1').first().innerText()).trim(), 'Mizan');
    const path = await screenshot(page, 'smoke');
    assert.match(path, /screenshots\/smoke\.png$/);
  } finally {
    await page.close();
  }
});
