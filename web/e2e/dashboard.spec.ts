import { expect, test, type Page } from '@playwright/test';

const SHOTS = '../artifacts/e2e';

type Hooks = Window & {
  __qs: {
    live: {
      paused: boolean;
      frames: number;
      book: { key: string; bids: [number, number][]; asks: [number, number][] };
      candleKey: string;
      conn: { state: string };
    };
    candles: {
      data(): { time: number; open: number; high: number; low: number; close: number }[];
      priceToCoordinate(p: number): number | null;
    };
    chart: { timeScale(): { timeToCoordinate(t: number): number | null; width(): number } };
    depth: {
      geometry: { width: number; height: number; lo: number; hi: number; maxCum: number; pad: number };
      bids: [number, number][];
      asks: [number, number][];
    } | null;
    heatmap?: { cols: number; rows: number; max: number; newest: number[]; glError: number };
    colormap(t: number): [number, number, number];
  };
};

async function open(page: Page, query = '') {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // the page runs under the server's Content-Security-Policy: a refused load is an error
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) errors.push(m.text());
  });
  await page.goto(`/?e2e${query}`);
  await expect(page.getByTestId('app')).toBeVisible();
  await expect(page.getByTestId('ws-status')).toContainText('open');
  return errors;
}

/** Freeze the picture (no more frames applied), then wait two animation frames for the paint. */
async function freeze(page: Page) {
  await page.mouse.move(0, 0);
  await page.evaluate(async () => {
    (window as unknown as Hooks).__qs.live.paused = true;
    for (let i = 0; i < 3; i++) await new Promise((r) => requestAnimationFrame(r));
  });
}

async function thaw(page: Page) {
  await page.evaluate(() => ((window as unknown as Hooks).__qs.live.paused = false));
}

/** Both sides read in one task, so no animation frame can redraw the ladder in between. */
async function ladderPrices(page: Page) {
  const [bid, ask] = await page.evaluate(() =>
    ['best-bid', 'best-ask'].map((id) => document.querySelector<HTMLElement>(`[data-testid=${id}]`)?.dataset.price ?? ''),
  );
  return { bid: Number(bid), ask: Number(ask), ok: !!bid && !!ask };
}

test('loads, prices move, ladder is not crossed', async ({ page }) => {
  const errors = await open(page);
  const last = page.getByTestId('last-BTC/USD');
  await expect(last).toHaveText(/\d/);
  const first = await last.textContent();
  await expect.poll(() => last.textContent(), { timeout: 30_000 }).not.toBe(first);
  await expect.poll(async () => (await ladderPrices(page)).ok).toBe(true);
  for (let i = 0; i < 5; i++) {
    const { bid, ask } = await ladderPrices(page);
    expect(bid).toBeGreaterThan(0);
    expect(bid).toBeLessThan(ask);
    await page.waitForTimeout(100);
  }
  // every frame for 3 s: the drawn ladder and the worker's book are never crossed or locked
  const audit = await page.evaluate(
    () =>
      new Promise<{ frames: number; bad: string[] }>((resolve) => {
        const bad: string[] = [];
        let frames = 0;
        const end = performance.now() + 3000;
        const check = () => {
          const bid = Number(document.querySelector<HTMLElement>('[data-testid=best-bid]')?.dataset.price);
          const ask = Number(document.querySelector<HTMLElement>('[data-testid=best-ask]')?.dataset.price);
          const book = (window as unknown as Hooks).__qs.live.book;
          if (!(bid < ask)) bad.push(`ladder ${bid} >= ${ask}`);
          if (book.bids.length && book.asks.length && !(book.bids[0][0] < book.asks[0][0]))
            bad.push(`book ${book.bids[0][0]} >= ${book.asks[0][0]}`);
          frames++;
          if (performance.now() < end) requestAnimationFrame(check);
          else resolve({ frames, bad });
        };
        requestAnimationFrame(check);
      }),
  );
  expect(audit.frames).toBeGreaterThan(30);
  expect(audit.bad).toEqual([]);
  await expect(page.getByTestId('venue-sim')).toContainText('live');
  await expect(page.getByTestId('tape-rows').locator('.trow').first()).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/desktop.png` });
  // the account UI is feature-detected from the OpenAPI schema
  const api = await (await page.request.get('/openapi.json')).json();
  const accounts = Object.keys(api.paths).some((p) => /\/(limits|login|keys)$/.test(p));
  await expect(page.getByTestId('account-button')).toHaveCount(accounts ? 1 : 0);
  expect(errors).toEqual([]);
});

test('candles: pixels at data-derived coordinates have the candle colours', async ({ page }) => {
  await open(page);
  await page.getByRole('button', { name: '1s', exact: true }).click();
  const emaButton = page.getByRole('button', { name: 'EMA20' });
  if ((await emaButton.getAttribute('aria-pressed')) === 'true') await emaButton.click(); // keep bodies clear
  await expect(emaButton).toHaveAttribute('aria-pressed', 'false');
  await expect
    .poll(() => page.evaluate(() => (window as unknown as Hooks).__qs.candles.data().length), { timeout: 40_000 })
    .toBeGreaterThan(4);
  // wait until some closed bar has a body tall enough to sample
  let sample: { want: string; got: number[]; body: number } | null = null;
  await expect
    .poll(
      async () => {
        await freeze(page);
        sample = await page.evaluate(() => {
          const qs = (window as unknown as Hooks).__qs;
          const all = qs.candles.data();
          const bars = all.slice(0, -1);
          // the last price's dashed line crosses the whole pane: sample away from it
          const priceLine = qs.candles.priceToCoordinate(all[all.length - 1].close) ?? -100;
          let best: { x: number; y: number; up: boolean; body: number } | null = null;
          for (const b of bars) {
            const x = qs.chart.timeScale().timeToCoordinate(b.time);
            const yo = qs.candles.priceToCoordinate(b.open);
            const yc = qs.candles.priceToCoordinate(b.close);
            if (x === null || yo === null || yc === null) continue;
            if (x < 3 || x > qs.chart.timeScale().width() - 3) continue; // scrolled out (history)
            const body = Math.abs(yo - yc);
            const top = Math.min(yo, yc) + 2;
            const bottom = Math.max(yo, yc) - 2;
            const y = [(top + bottom) / 2, top, bottom].find((c) => Math.abs(c - priceLine) > 3);
            if (y !== undefined && (!best || body > best.body)) best = { x, y, up: b.close >= b.open, body };
          }
          if (!best || best.body < 6) return null;
          const canvases = [...document.querySelectorAll<HTMLCanvasElement>('[data-testid=chart] canvas')];
          const area = (c: HTMLCanvasElement) => c.getBoundingClientRect().width * c.getBoundingClientRect().height;
          const main = canvases.reduce((a, c) => (area(c) > area(a) ? c : a));
          const scale = main.width / main.getBoundingClientRect().width;
          const px = main.getContext('2d')!.getImageData(Math.round(best.x * scale), Math.round(best.y * scale), 1, 1).data;
          return { want: best.up ? 'up' : 'down', got: [...px], body: best.body };
        });
        if (!sample) await thaw(page);
        return sample !== null;
      },
      { timeout: 60_000, intervals: [1000] },
    )
    .toBe(true);
  const s = sample as unknown as { want: string; got: number[] };
  const colour = s.want === 'up' ? [0x26, 0xa6, 0x9a, 255] : [0xef, 0x53, 0x50, 255];
  for (let i = 0; i < 4; i++) expect(Math.abs(s.got[i] - colour[i])).toBeLessThanOrEqual(2);
  await page.getByTestId('chart').screenshot({ path: `${SHOTS}/candles.png` });
});

test('depth chart and heatmap: pixels follow the book', async ({ page }) => {
  await open(page);
  await expect
    .poll(() => page.evaluate(() => ((window as unknown as Hooks).__qs.depth?.bids.length ?? 0) > 20))
    .toBe(true);
  await expect
    .poll(() => page.evaluate(() => ((window as unknown as Hooks).__qs.heatmap?.max ?? 0) > 0))
    .toBe(true);
  await freeze(page);
  const depth = await page.evaluate(() => {
    const qs = (window as unknown as Hooks).__qs;
    const { geometry: g, bids, asks } = qs.depth!;
    const xOf = (p: number) => ((p - g.lo) / (g.hi - g.lo)) * g.width;
    const yOf = (c: number) => g.height - g.pad - (c / g.maxCum) * (g.height - g.pad - 4);
    const canvas = document.querySelector<HTMLCanvasElement>('[data-testid=depth-canvas]')!;
    const ctx = canvas.getContext('2d')!;
    const scale = canvas.width / g.width;
    const px = (x: number, y: number) => [...ctx.getImageData(Math.round(x * scale), Math.round(y * scale), 1, 1).data];
    // inside each side's filled area: between two levels with a wide gap, halfway up the step
    const inside = (levels: [number, number][]) => {
      let cum = 0;
      let best = { x: 0, y: 0, gap: -1 };
      for (let i = 0; i < levels.length - 1; i++) {
        cum += levels[i][1];
        const gap = Math.abs(xOf(levels[i + 1][0]) - xOf(levels[i][0]));
        const height = g.height - g.pad - yOf(cum);
        if (i >= 3 && height > 12 && gap > best.gap)
          best = { x: (xOf(levels[i][0]) + xOf(levels[i + 1][0])) / 2, y: (yOf(cum) + g.height - g.pad) / 2, gap };
      }
      return best;
    };
    const b = inside(bids);
    const a = inside(asks);
    return { bid: px(b.x, b.y), ask: px(a.x, a.y), above: px(xOf(bids[3][0]), 2), bgap: b.gap, agap: a.gap };
  });
  expect(depth.bgap).toBeGreaterThan(1);
  expect(depth.agap).toBeGreaterThan(1);
  expect(depth.bid).toEqual([24, 94, 80, 255]);
  expect(depth.ask).toEqual([110, 36, 44, 255]);
  expect(depth.above).toEqual([0x13, 0x17, 0x22, 255]); // panel background above the curve
  await page.getByTestId('depth').screenshot({ path: `${SHOTS}/depth.png` });

  const heat = await page.evaluate(() => {
    const qs = (window as unknown as Hooks).__qs;
    const h = qs.heatmap!;
    const canvas = document.querySelector<HTMLCanvasElement>('[data-testid=heatmap-canvas]')!;
    const gl = canvas.getContext('webgl2')!;
    const x = Math.floor((canvas.width * (h.cols - 0.5)) / h.cols); // newest column
    const at = (row: number) => {
      const py = Math.floor(((row + 0.5) * canvas.height) / h.rows);
      const actual = Math.floor(((py + 0.5) * h.rows) / canvas.height);
      const out = new Uint8Array(4);
      gl.readPixels(x, py, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, out);
      const v = h.newest[actual];
      const want = qs.colormap(h.max > 0 ? Math.log(1 + v) / Math.log(1 + h.max) : 0);
      return { got: [...out], want: [...want, 255], v };
    };
    const hot = h.newest.indexOf(Math.max(...h.newest));
    const empty = h.newest.findIndex((v) => v === 0);
    return { hot: at(hot), empty: empty >= 0 ? at(empty) : null, err: gl.getError(), glError: h.glError };
  });
  expect(heat.err).toBe(0);
  expect(heat.glError).toBe(0);
  expect(heat.hot.v).toBeGreaterThan(0);
  for (const cell of [heat.hot, heat.empty].filter((c) => c !== null)) {
    for (let i = 0; i < 4; i++) expect(Math.abs(cell!.got[i] - cell!.want[i])).toBeLessThanOrEqual(3);
  }
  expect(heat.hot.got).not.toEqual(heat.empty?.got ?? [-1]);
  await page.getByTestId('heatmap').screenshot({ path: `${SHOTS}/heatmap.png` });
  await thaw(page);
});

test('switching symbol and interval', async ({ page }) => {
  await open(page);
  await page.getByTestId('symbol-select').selectOption('ETH/USD');
  await expect
    .poll(() => page.evaluate(() => (window as unknown as Hooks).__qs.live.book.key))
    .toBe('ETH/USD|*');
  await expect.poll(async () => (await ladderPrices(page)).ok).toBe(true);
  const { bid, ask } = await ladderPrices(page);
  expect(bid).toBeLessThan(ask);
  const btc = Number(await page.getByTestId('last-BTC/USD').textContent());
  // the ladder now shows ETH, priced far from BTC
  expect(Math.abs(bid - btc) / btc).toBeGreaterThan(0.2);
  await page.getByRole('button', { name: '5m', exact: true }).click();
  await expect
    .poll(() => page.evaluate(() => (window as unknown as Hooks).__qs.live.candleKey))
    .toBe('ETH/USD|*|300');
  // the worker switches the key at once; the chart swaps its bars on the next animation frame
  await expect
    .poll(async () => {
      const times = await page.evaluate(() =>
        (window as unknown as Hooks).__qs.candles.data().map((b) => b.time),
      );
      return times.length > 0 && times.every((t) => t % 300 === 0);
    })
    .toBe(true);
  await expect(page.getByRole('button', { name: '5m', exact: true })).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByTestId('legend')).toContainText('O ');
  await page.screenshot({ path: `${SHOTS}/eth-5m.png` });
});

test('phone viewport shows the tab layout', async ({ browser }) => {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 1,
    isMobile: true,
    hasTouch: true,
    serviceWorkers: 'block',
  });
  const page = await context.newPage();
  await open(page);
  const tabs = page.getByTestId('tabs');
  await expect(tabs).toBeVisible();
  await expect(page.getByTestId('chart')).toBeVisible();
  await expect(page.getByTestId('ladder')).toBeHidden();
  await page.screenshot({ path: `${SHOTS}/phone-chart.png` });
  await tabs.getByRole('tab', { name: 'Book' }).click();
  await expect(page.getByTestId('ladder')).toBeVisible();
  await expect(page.getByTestId('chart')).toBeHidden();
  await expect.poll(async () => (await ladderPrices(page)).ok).toBe(true);
  await page.screenshot({ path: `${SHOTS}/phone-book.png` });
  await tabs.getByRole('tab', { name: 'Trades' }).click();
  await expect(page.getByTestId('tape')).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/phone-trades.png` });
  await tabs.getByRole('tab', { name: 'Markets' }).click();
  await expect(page.getByTestId('watchlist')).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/phone-markets.png` });
  const box = await tabs.boundingBox();
  expect(box!.y + box!.height).toBeGreaterThan(800); // tabs sit at the bottom
  await context.close();
});

test('PWA: manifest and a shell-only service worker are served', async ({ request }) => {
  const manifest = await request.get('/manifest.webmanifest');
  expect((await manifest.json()).display).toBe('standalone');
  const sw = await (await request.get('/sw.js')).text();
  expect(sw).toContain("url.pathname.startsWith('/assets/')");
  const html = await request.get('/', { headers: { Accept: 'text/html' } });
  expect(await html.text()).toContain('<div id="root">');
  // every test here runs under this policy (`open` fails on a refused load)
  expect(html.headers()['content-security-policy']).toContain("script-src 'self';");
  expect(html.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
  expect(html.headers()['x-content-type-options']).toBe('nosniff');
  const json = await request.get('/', { headers: { Accept: 'application/json' } });
  expect((await json.json()).service).toBe('quant-saas');
});

test('analytics panels appear when the server offers them', async ({ page, request }) => {
  const info = await (await request.get('/', { headers: { Accept: 'application/json' } })).json();
  const smile = await request.get('/api/v1/options/BTC/smile');
  await open(page, '&symbol=BTC/USD');
  const panel = page.getByTestId('analytics');
  if (!info.channels.includes('ofi') && !smile.ok()) {
    await expect(panel).toContainText('No analytics');
    return;
  }
  if (info.channels.includes('ofi')) {
    await expect(page.getByTestId('metric-ofi').locator('.num')).toHaveText(/^-?\d+\.\d+$/, { timeout: 30_000 });
  }
  if (smile.ok() && info.channels.includes('options')) {
    await expect(page.getByTestId('smile')).toBeVisible();
    await expect(page.getByTestId('smile').locator('circle').first()).toBeVisible();
    await expect(page.getByTestId('greeks')).toContainText('Δ');
  }
  await panel.screenshot({ path: `${SHOTS}/analytics.png` });
});
