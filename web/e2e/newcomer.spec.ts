import { expect, test, type Page } from '@playwright/test';

// A newcomer's first minute (issue 15.8): a fresh anonymous visitor lands on BTC/USD, under the
// server's Content-Security-Policy, and the page asks only what applies: no 401 (who am I, stream
// ticket) and no 404 (options of a currency without a chain), on load or when switching market.

type Hooks = Window & { __qs: { live: { conn: { state: string; identity: string | null } } } };

function watch(page: Page) {
  const refused: string[] = [];
  page.on('response', (r) => {
    if (r.status() >= 400) refused.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) refused.push(`CSP: ${m.text()}`);
  });
  page.on('pageerror', (e) => refused.push(`page error: ${String(e)}`));
  return refused;
}

test('a fresh anonymous load asks nothing it may not have: no 4xx, no CSP refusal', async ({ browser }) => {
  const context = await browser.newContext({ serviceWorkers: 'block' }); // no cookies, no storage
  const page = await context.newPage();
  const refused = watch(page);
  await page.goto('/?e2e');
  await expect(page.getByTestId('ws-status')).toContainText('open');
  await expect(page.getByTestId('ws-status')).toHaveAttribute('data-identity', 'anonymous');
  await expect(page.getByTestId('symbol-select')).toHaveValue('BTC/USD'); // not ADA/USD
  await expect(page.getByTestId('account-button')).toContainText('Sign in');
  await expect(page.getByTestId('smile')).toBeVisible({ timeout: 30_000 }); // BTC has a chain
  await page.waitForTimeout(2000);
  // a market without an option chain: its options are not asked for
  await page.getByTestId('symbol-select').selectOption('ADA/USD');
  await expect(page.getByTestId('smile')).toHaveCount(0);
  await page.waitForTimeout(6000); // longer than the options poll (5 s)
  await page.reload();
  await expect(page.getByTestId('ws-status')).toContainText('open');
  await expect(page.getByTestId('symbol-select')).toHaveValue('ADA/USD'); // remembered
  await page.waitForTimeout(2000);
  expect(refused).toEqual([]);
  await context.close();
});
