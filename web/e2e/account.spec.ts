import { expect, test } from '@playwright/test';

// Accounts against the real server (issue 8): sign up through the dashboard, see the free tier,
// create a key (shown once) and revoke it, watch the stream run under the signed-in identity (the
// page connects with a ticket), then sign out.

type Hooks = Window & { __qs: { live: { conn: { state: string; identity: string | null } } } };

const SHOTS = '../artifacts/e2e';

test('sign up, free tier, create and revoke a key, stream as the user, sign out', async ({ page, request }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // the feed worker's sockets and ticket requests (Playwright reports a worker's traffic too)
  const sockets: string[] = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  let tickets = 0;
  page.on('request', (r) => {
    if (r.url().endsWith('/api/v1/ws-ticket') && r.method() === 'POST') tickets++;
  });
  const withTicket = () => sockets.filter((u) => /[?&]ticket=[\w-]+/.test(u));
  await page.goto('/?e2e');
  const status = page.getByTestId('ws-status');
  await expect(status).toContainText('open');
  await expect(status).toHaveAttribute('data-identity', 'anonymous'); // the demo's anonymous tier

  // sign up through the dashboard
  const email = `e2e-${Date.now()}@example.com`;
  await page.getByTestId('account-button').click();
  const panel = page.getByTestId('account');
  await panel.getByRole('button', { name: /Create an account/ }).click();
  await panel.getByLabel('Email').fill(email);
  await panel.getByLabel('Password').fill('correct horse battery staple');
  await panel.getByRole('button', { name: 'Create account' }).click();
  await expect(panel.getByTestId('tier')).toHaveText('tier free');
  await expect(panel.getByTestId('account-email')).toHaveText(email);
  await expect(panel.getByTestId('limits')).toContainText('BTC/USD, ETH/USD');
  await expect(page.getByTestId('account-button')).toContainText('free');

  // the stream reconnected under the new identity, with a ticket, and still streams
  await expect(status).toHaveAttribute('data-identity', 'user');
  await expect(status).toContainText('open');
  await expect.poll(() => page.evaluate(() => (window as unknown as Hooks).__qs.live.conn.identity)).toBe('user');
  expect(sockets[0]).toMatch(/\/ws$/); // anonymous at first: no ticket
  expect(withTicket()).toHaveLength(1);
  const limits = async () => (await (await page.request.get('/api/v1/limits')).json()) as { tier: string; usage: { ws_connections: number } };
  await expect.poll(async () => (await limits()).usage.ws_connections).toBe(1); // the server counts it as the user's
  expect((await limits()).tier).toBe('free');
  await page.getByTestId('symbol-select').selectOption('BTC/USD');
  const last = page.getByTestId('last-BTC/USD');
  await expect(last).toHaveText(/\d/);
  const first = await last.textContent();
  await expect.poll(() => last.textContent(), { timeout: 30_000 }).not.toBe(first);
  await expect(page.getByTestId('best-bid')).toBeVisible(); // the free tier's sampled book
  await panel.getByRole('button', { name: 'Refresh limits' }).click();
  await expect(panel.getByTestId('usage-ws')).toHaveText('1 of 1 open');

  // saved backtests are not in the free tier: the window says so instead of listing any
  await page.getByTestId('backtests-button').click();
  const backtests = page.getByTestId('backtests');
  await expect(backtests.getByRole('alert')).toContainText('does not include backtests');
  await page.getByTestId('backtests-button').click(); // the header button toggles it
  await expect(backtests).toHaveCount(0);

  // a key: shown once, works, is revoked, stops working
  await panel.getByLabel('Key name').fill('e2e-bot');
  await panel.getByRole('button', { name: 'Create key' }).click();
  const shown = panel.getByTestId('new-key');
  await expect(shown).toContainText('shown only this once');
  const key = await panel.getByTestId('new-key-value').inputValue();
  expect(key).toMatch(/^qs_/);
  const asKey = await request.get('/api/v1/account', { headers: { 'X-API-Key': key } });
  expect(asKey.status()).toBe(200);
  expect((await asKey.json()).user.email).toBe(email);
  await page.screenshot({ path: `${SHOTS}/account-key.png` });
  await panel.getByTestId('new-key-done').click();
  await expect(shown).toHaveCount(0);
  expect(await page.content()).not.toContain(key);
  const row = panel.getByTestId('key-row').filter({ hasText: 'e2e-bot' });
  await expect(row.getByTestId('key-state')).toHaveText('active');
  await row.getByRole('button', { name: 'Revoke e2e-bot' }).click();
  await row.getByRole('button', { name: 'Yes, revoke' }).click();
  await expect(row.getByTestId('key-state')).toHaveText('revoked');
  await expect(row).toContainText('revoked 20');
  expect((await request.get('/api/v1/account', { headers: { 'X-API-Key': key } })).status()).toBe(401);
  // revoking a key closes that key's sockets only: the dashboard's own stream (a ticket from the
  // session) stays open on the same connection
  await page.waitForTimeout(1500);
  const conn = await page.evaluate(() => (window as unknown as Hooks).__qs.live.conn);
  expect(`${conn.state} ${conn.identity}`).toBe('open user');
  const used = withTicket();
  expect(used).toHaveLength(1);
  expect(tickets).toBeGreaterThanOrEqual(used.length);

  // a symbol outside the free tier: a clear notice instead of empty panels
  await page.getByTestId('account-button').click(); // close the panel
  await page.getByTestId('symbol-select').selectOption('SOL/USD');
  await expect(page.getByTestId('tier-notice').first()).toContainText('not in your tier');
  await expect(page.locator('[data-testid=tier-notice]').filter({ hasText: 'SOL/USD' }).first()).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/tier-notice.png` });
  await page.getByTestId('symbol-select').selectOption('BTC/USD');

  // sign out: the stream goes back to the anonymous demo tier
  await page.getByTestId('account-button').click();
  await panel.getByTestId('sign-out').click();
  await expect(panel.getByRole('button', { name: 'Sign in' })).toBeVisible();
  await expect(status).toHaveAttribute('data-identity', 'anonymous');
  await expect(status).toContainText('open');
  expect(sockets[sockets.length - 1]).toMatch(/\/ws$/);
  expect((await page.request.get('/api/v1/limits')).status()).toBe(401);

  // sign in again: a new connection with a new ticket (single use: never the first one again)
  await panel.getByLabel('Email').fill(email);
  await panel.getByLabel('Password').fill('correct horse battery staple');
  await panel.getByRole('button', { name: 'Sign in' }).click();
  await expect(panel.getByTestId('tier')).toHaveText('tier free');
  await expect(status).toHaveAttribute('data-identity', 'user');
  await expect(status).toContainText('open');
  const again = withTicket();
  expect(again).toHaveLength(2);
  expect(new Set(again).size).toBe(2); // a fresh ticket for every connect
  expect(tickets).toBeGreaterThanOrEqual(again.length);

  // change the password: this session continues, the old password no longer signs in
  await panel.getByText('Change password', { exact: true }).first().click();
  const pw = panel.getByTestId('password-form');
  await pw.getByLabel('Current password').fill('correct horse battery staple');
  await pw.getByLabel('New password').fill('another long passphrase');
  await pw.getByRole('button', { name: 'Change password' }).click();
  await expect(pw.getByRole('status')).toContainText('Other sessions were signed out');
  expect((await page.request.get('/api/v1/limits')).status()).toBe(200);
  const oldLogin = await request.post('/api/v1/auth/login', { data: { email, password: 'correct horse battery staple' } });
  expect(oldLogin.status()).toBe(401);
  expect(errors).toEqual([]);
});

test('the account panel fits a phone', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, serviceWorkers: 'block' });
  const page = await context.newPage();
  await page.goto('/?e2e');
  await page.getByTestId('account-button').click();
  const panel = page.getByTestId('account');
  await expect(panel.getByRole('button', { name: 'Sign in' })).toBeVisible();
  const box = (await panel.boundingBox())!;
  expect(box.width).toBeGreaterThanOrEqual(380);
  expect(box.x).toBeGreaterThanOrEqual(0);
  const input = (await panel.getByLabel('Email').boundingBox())!;
  expect(input.x + input.width).toBeLessThanOrEqual(390);
  await page.screenshot({ path: `${SHOTS}/phone-account.png` });
  await panel.getByRole('button', { name: 'Close account' }).click();
  await expect(panel).toHaveCount(0);
  await context.close();
});
