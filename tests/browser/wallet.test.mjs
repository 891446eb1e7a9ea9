// The wallet in a real browser: sign up, add money, send to someone who sees it
// arrive live, the receipt; a declined card; the Arabic page and amounts typed in
// Arabic digits; keyboard-only sending; a double click that pays once; CSRF and CSP.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  call,
  fund,
  launchBrowser,
  logInPage,
  login,
  screenshot,
  signup,
  startMizan,
  takePageProblems,
  verify,
} from './harness.mjs';

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

/** A browser context (its own cookies) signed in as `handle` through the log-in form. */
function signedIn(handle, options = {}) {
  return logInPage(browser, server.baseUrl, handle, PASSWORD, options);
}

async function balanceText(page) {
  return (await page.locator('#balance').textContent()).trim();
}

/** Opens the add-money form and submits `amount` from `card`, saved as the default card if asked. */
async function addFromCard(page, amount, card, { save = false } = {}) {
  await page.goto(`${server.baseUrl}/add-money`);
  await page.getByLabel('Amount').fill(amount);
  await page.getByLabel('Card number').fill(card);
  if (save) {
    await page.getByLabel('Save as my default card').check();
  }
  await page.getByRole('button', { name: 'Add from card' }).click();
}

test('sign up, add money, send to a person who sees it live, and get a receipt', async () => {
  // The recipient exists and has their home page open before the money is sent.
  await signup(server.baseUrl, 'bilal', PASSWORD);
  const bilal = await signedIn('bilal');
  assert.equal(await balanceText(bilal.page), '$0.00');
  await screenshot(bilal.page, 'home-empty');

  const context = await browser.newContext({ locale: 'en-US' });
  const page = await context.newPage();
  await page.goto(server.baseUrl);
  await screenshot(page, 'landing');
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByLabel('Handle').fill('amina');
  await page.getByLabel('Email').fill('amina@example.com');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Full legal name').fill('Amina Rahman');
  await screenshot(page, 'signup');
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.waitForURL(`${server.baseUrl}/?done=welcome`);
  assert.equal(await page.locator('h1').textContent(), '@amina');

  await page.getByRole('link', { name: 'Add money' }).first().click();
  await page.getByLabel('Amount').fill('80.00');
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await screenshot(page, 'add-money');
  await page.getByRole('button', { name: 'Add from card' }).click();
  await page.waitForURL(`${server.baseUrl}/?done=added`);
  assert.equal(await balanceText(page), '$80.00');
  await screenshot(page, 'home');

  await page.goto(`${server.baseUrl}/send`);
  await page.getByLabel('To').fill('bil');
  // The handle autocomplete offers bilal.
  await assert.doesNotReject(
    page.waitForFunction(() =>
      [...document.querySelectorAll('#handle-suggestions option')].some((o) => o.value === 'bilal'),
    ),
  );
  await page.getByLabel('To').fill('@bilal');
  await page.getByLabel('Amount').fill('12.50');
  await page.getByLabel('Note (optional)').fill('pizza 🍕');
  await screenshot(page, 'send');
  await page.getByRole('button', { name: 'Send money' }).click();
  await page.waitForURL(/\/receipts\/[0-9a-f]{32}\?done=sent$/);
  const receipt = await page.locator('dl.receipt').textContent();
  assert.match(receipt, /@amina/);
  assert.match(receipt, /@bilal/);
  assert.match(receipt, /\$12\.50/);
  assert.match(receipt, /pizza 🍕/);
  assert.match(await page.locator('dl.receipt code.hash').textContent(), /^[0-9a-f]{64}$/);
  await screenshot(page, 'receipt');

  // Bilal's open page updates without a reload: the toast and the balance.
  await bilal.page
    .locator('#toast', { hasText: 'You received $12.50 from @amina' })
    .waitFor({ timeout: 10_000 });
  await bilal.page.waitForFunction(
    () => document.querySelector('#balance')?.textContent.trim() === '$12.50',
    null,
    { timeout: 10_000 },
  );
  assert.match(await bilal.page.locator('#recent').textContent(), /@amina/);
  await screenshot(bilal.page, 'home-received-live');

  await page.goto(`${server.baseUrl}/?`);
  assert.equal(await balanceText(page), '$67.50');
  await page.goto(`${server.baseUrl}/activity`);
  assert.equal(await page.locator('ul.activity-list li').count(), 2);
  await screenshot(page, 'activity');
  // Filtered by counterparty, only the payment to Bilal is left.
  await page.getByLabel('With (handle)').fill('bilal');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/with=bilal/);
  const lines = page.locator('ul.activity-list li');
  assert.equal(await lines.count(), 1);
  assert.match(await lines.first().textContent(), /@bilal.*pizza/s);
  await context.close();
  await bilal.context.close();
});

test('a declined card shows its error next to the field and moves no money', async () => {
  await signup(server.baseUrl, 'chen', PASSWORD);
  const { context, page } = await signedIn('chen');
  await addFromCard(page, '25.00', '4000 0000 0000 9995');
  const error = page.locator('#field-card_number-error');
  await error.waitFor();
  assert.equal(await error.textContent(), 'Your card was declined: not enough funds on the card.');
  assert.equal(await page.getByLabel('Card number').getAttribute('aria-invalid'), 'true');
  // The card number is not echoed back into the page.
  assert.equal(await page.getByLabel('Card number').inputValue(), '');
  assert.ok(!(await page.content()).includes('4000000000009995'));
  await screenshot(page, 'add-money-declined');
  await page.goto(server.baseUrl);
  assert.equal(await balanceText(page), '$0.00');
  await context.close();
});

test('a top-up waiting for its card challenge shows as on its way, then as balance', async () => {
  await signup(server.baseUrl, 'dalia', PASSWORD);
  const { context, page } = await signedIn('dalia');
  await addFromCard(page, '12.50', '4000 0000 0000 3220');
  await page.waitForURL(/\/add-money\/[0-9a-f]{32}\/challenge$/);
  const challenge = page.url();
  // Held, not yet in the wallet: the home page says it is on its way.
  await page.goto(server.baseUrl);
  assert.equal(await balanceText(page), '$0.00');
  assert.equal((await page.locator('#incoming').textContent()).trim(), 'On its way to you: $12.50');
  await page.goto(challenge);
  await page.getByLabel('Code').fill('123456');
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForURL((url) => !url.pathname.endsWith('/challenge'));
  await page.goto(server.baseUrl);
  assert.equal(await balanceText(page), '$12.50');
  assert.equal(await page.locator('#incoming').count(), 0);
  await context.close();
});

test('a card saved as the default card is kept as a token and listed by its last 4', async () => {
  await signup(server.baseUrl, 'hugo', PASSWORD);
  const { context, page } = await signedIn('hugo');
  await addFromCard(page, '10.00', '5555 5555 5555 4444', { save: true });
  await page.waitForURL(`${server.baseUrl}/?done=added`);
  assert.equal(await balanceText(page), '$10.00');
  // The API answers the same session: one saved card, default, last 4 only.
  const response = await page.request.get(`${server.baseUrl}/v1/me/cards`);
  assert.equal(response.status(), 200);
  const { cards } = await response.json();
  assert.equal(cards.length, 1);
  assert.equal(cards[0].last4, '4444');
  assert.equal(cards[0].default, true);
  assert.match(cards[0].id, /^tok_card_[0-9a-f]{32}$/);
  assert.ok(!JSON.stringify(cards).includes('5555555555554444'));
  await context.close();
});

test('the Arabic pages are right to left, with Arabic numerals', async () => {
  await signup(server.baseUrl, 'dana', PASSWORD);
  const token = await login(server.baseUrl, 'dana', PASSWORD);
  // $1,234.50 is over what a new person may add in a week.
  await verify(server.baseUrl, token);
  await fund(server.baseUrl, token, '1234.50');
  const { context, page } = await signedIn('dana');
  await page.getByRole('link', { name: 'العربية' }).click();
  await page.waitForFunction(() => document.documentElement.dir === 'rtl');
  assert.equal(await page.locator('html').getAttribute('lang'), 'ar');
  assert.equal(await page.locator('h2#balance-title').textContent(), 'الرصيد');
  assert.equal(await balanceText(page), '١٬٢٣٤٫٥٠\u00a0US$');
  const direction = await page.evaluate(() => getComputedStyle(document.body).direction);
  assert.equal(direction, 'rtl');
  await screenshot(page, 'home-arabic');
  await page.goto(`${server.baseUrl}/send`);
  assert.equal(await page.locator('h1').textContent(), 'إرسال المال');
  await page.getByRole('link', { name: 'English' }).click();
  await page.waitForFunction(() => document.documentElement.dir === 'ltr');
  await context.close();
});

test('sending works with the keyboard alone', async () => {
  await signup(server.baseUrl, 'elif', PASSWORD);
  await signup(server.baseUrl, 'farah', PASSWORD);
  const token = await login(server.baseUrl, 'elif', PASSWORD);
  await fund(server.baseUrl, token, '20.00');
  const { context, page } = await signedIn('elif');
  await page.goto(`${server.baseUrl}/send`);
  // From the top of the page, Tab reaches the form's fields in order.
  const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName);
  let steps = 0;
  while ((await focused()) !== 'field-to') {
    await page.keyboard.press('Tab');
    steps += 1;
    assert.ok(steps < 40, 'Tab never reached the To field');
  }
  await page.keyboard.type('farah');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'field-amount');
  await page.keyboard.type('7.25');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'field-note');
  await page.keyboard.type('thanks');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Send money');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/receipts\/[0-9a-f]{32}\?done=sent$/);
  assert.match(await page.locator('dl.receipt').textContent(), /\$7\.25/);
  await page.goto(server.baseUrl);
  assert.equal(await balanceText(page), '$12.75');
  await context.close();
});

test('a form posted without its CSRF token changes nothing', async () => {
  await signup(server.baseUrl, 'gita', PASSWORD);
  const token = await login(server.baseUrl, 'gita', PASSWORD);
  await fund(server.baseUrl, token, '10.00');
  const { context, page } = await signedIn('gita');
  const status = await page.evaluate(async () => {
    const response = await fetch('/send', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'to=bilal&amount=5.00',
    });
    return response.status;
  });
  assert.equal(status, 403);
  await page.goto(server.baseUrl);
  assert.equal(await balanceText(page), '$10.00');
  await context.close();
});

test('an amount typed with an Arabic keyboard is read as the same amount', async () => {
  await signup(server.baseUrl, 'iman', PASSWORD);
  await signup(server.baseUrl, 'jana', PASSWORD);
  await fund(server.baseUrl, await login(server.baseUrl, 'iman', PASSWORD), '20.00');
  const { context, page } = await signedIn('iman');
  await page.goto(`${server.baseUrl}/lang/ar`);
  await page.waitForFunction(() => document.documentElement.dir === 'rtl');
  await page.goto(`${server.baseUrl}/send`);
  await page.locator('#field-to').fill('jana');
  await page.locator('#field-amount').fill('١٢٫٥٠');
  await page.locator('#field-amount').press('Enter');
  await page.waitForURL(/\/receipts\/[0-9a-f]{32}\?done=sent$/);
  assert.match(await page.locator('dl.receipt dd.amount').textContent(), /^١٢٫٥٠\u00a0US\$$/);
  await page.goto(server.baseUrl);
  assert.equal(await balanceText(page), '٧٫٥٠\u00a0US$');
  await context.close();
});

test('double-clicking Send makes exactly one payment, with or without the script', async () => {
  await signup(server.baseUrl, 'karim', PASSWORD);
  await signup(server.baseUrl, 'layla', PASSWORD);
  await fund(server.baseUrl, await login(server.baseUrl, 'karim', PASSWORD), '30.00');
  for (const javaScriptEnabled of [true, false]) {
    const { context, page } = await signedIn('karim', { javaScriptEnabled });
    await page.goto(`${server.baseUrl}/send`);
    await page.getByLabel('To').fill('layla');
    await page.getByLabel('Amount').fill('10.00');
    await page.getByRole('button', { name: 'Send money' }).dblclick();
    await page.waitForURL(/\/receipts\/[0-9a-f]{32}\?done=sent$/);
    await context.close();
  }
  const layla = await login(server.baseUrl, 'layla', PASSWORD);
  const { items } = await call(server.baseUrl, 'GET', '/v1/activity', { token: layla });
  assert.deepEqual(
    items.map((item) => item.amount),
    ['10.00', '10.00'],
    'two double clicks should make two payments',
  );
  const { context, page } = await signedIn('karim');
  assert.equal(await balanceText(page), '$10.00');
  await context.close();
});

test('pages carry the strict Content-Security-Policy, and the browser enforces it', async () => {
  const context = await browser.newContext({ locale: 'en-US' });
  const page = await context.newPage();
  const response = await page.goto(`${server.baseUrl}/login`);
  const headers = response.headers();
  assert.equal(
    headers['content-security-policy'],
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
      "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.equal(headers['x-frame-options'], 'DENY');
  assert.equal(headers['referrer-policy'], 'same-origin');

  // An injected inline script does not run, and the harness hears of the violation.
  const reported = page.waitForEvent('console', {
    predicate: (message) => message.text().startsWith('securitypolicyviolation: script-src'),
  });
  const refused = page.waitForEvent('console', {
    predicate: (message) => message.text().includes('Content Security Policy'),
  });
  const ran = await page.evaluate(() => {
    const script = document.createElement('script');
    script.textContent = 'window.injected = true;';
    document.head.append(script);
    return window.injected === true;
  });
  assert.equal(ran, false);
  await Promise.all([reported, refused]);
  const problems = takePageProblems();
  assert.ok(
    problems.some((problem) => problem.includes('securitypolicyviolation: script-src')),
    `not reported: ${problems}`,
  );
  await context.close();
});
