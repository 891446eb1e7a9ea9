// A profile picture: set from "Edit profile" as an https:// link, shown on the
// profile as a link (the CSP loads no third-party image); a plain http:// link is
// refused next to the field and changes nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, logInPage, signup, startMizan } from './harness.mjs';

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

test('a person sets an https avatar on their profile', async () => {
  await signup(server.baseUrl, 'amina', PASSWORD);
  await signup(server.baseUrl, 'yusuf', PASSWORD);
  const amina = await logInPage(browser, server.baseUrl, 'amina', PASSWORD);
  const page = amina.page;
  await page.goto(`${server.baseUrl}/people/amina`);

  await page.getByText('Edit profile').click();
  await page.getByLabel('Display name').fill('Amina');
  await page.getByLabel('Profile picture (optional)').fill('http://images.example.com/amina.png');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await page.locator('body').textContent(), /Use an https:\/\/ link of at most 500 characters\./);

  await page.getByLabel('Profile picture (optional)').fill('https://images.example.com/amina.png');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(`${server.baseUrl}/people/amina`);
  const link = page.locator('p.avatar a');
  assert.equal(await link.getAttribute('href'), 'https://images.example.com/amina.png');

  const yusuf = await logInPage(browser, server.baseUrl, 'yusuf', PASSWORD);
  await yusuf.page.goto(`${server.baseUrl}/people/amina`);
  assert.equal(
    await yusuf.page.getByRole('link', { name: 'Profile picture' }).getAttribute('href'),
    'https://images.example.com/amina.png',
  );
  await amina.context.close();
  await yusuf.context.close();
});
