import { expect, test, type Page } from '@playwright/test';

// A newcomer's first minute (issue 15.8): a fresh anonymous visitor lands on BTC/USD, under the
// server's Content-Security-Policy, and the page asks only what applies: no 401 (who am I, stream
// ticket) and no 404 (options of a currency without a chain), on load or when switching market.
// The server started on an empty data directory, so its simulator warm start wrote the past hours
// into history: the candle chart and the heatmap are full from the first seconds.

type Hooks = Window & {
  __qs: {
    candles: { data(): { time: number }[] };
    heatmap?: { past: number; max: number };
  };
};

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

test('the first minute already shows hours of candles and a full heatmap (simulator warm start)', async ({ browser, request }) => {
  // the warm start runs in the background for a few seconds after the server starts
  const past = async () => {
    const end = Date.now();
    const start = new Date(end - 5 * 3600_000).toISOString();
    const r = await request.get(`/api/v1/history/candles/sim/BTC-USD?interval=1m&start=${start}&end=${new Date(end).toISOString()}`);
    return r.ok() ? ((await r.json()).data as unknown[]).length : 0;
  };
  await expect.poll(past, { timeout: 60_000, intervals: [1000] }).toBeGreaterThan(200);
  const context = await browser.newContext({ serviceWorkers: 'block' });
  const page = await context.newPage();
  const refused = watch(page);
  const loaded = Date.now();
  await page.goto('/?e2e');
  await expect(page.getByTestId('ws-status')).toContainText('open');
  await expect
    .poll(() => page.evaluate(() => (window as unknown as Hooks).__qs.candles.data().length), { timeout: 10_000 })
    .toBeGreaterThan(200); // 1m bars: hours of them, not one
  await expect
    .poll(() => page.evaluate(() => (window as unknown as Hooks).__qs.heatmap?.past ?? 0), { timeout: 10_000 })
    .toBeGreaterThan(200); // of 240 columns (a minute), filled from the recorded books
  expect(Date.now() - loaded).toBeLessThan(20_000);
  const spread = await page.evaluate(() => {
    const bars = (window as unknown as Hooks).__qs.candles.data();
    return bars[bars.length - 1].time - bars[0].time;
  });
  expect(spread).toBeGreaterThan(3 * 3600); // seconds
  await page.getByTestId('heatmap').screenshot({ path: '../artifacts/e2e/heatmap-first-minute.png' });
  await page.getByTestId('chart').screenshot({ path: '../artifacts/e2e/candles-first-minute.png' });
  expect(refused).toEqual([]);
  await context.close();
});
