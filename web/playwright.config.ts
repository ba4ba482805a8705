import { defineConfig } from '@playwright/test';

// End-to-end tests against a real `quantsaas serve` on the simulator, started here on a fixed
// loopback port (E2E_PORT) and stopped afterwards. Debian's Chromium only: never a downloaded one.
const port = Number(process.env.E2E_PORT ?? 18765);
const base = `http://127.0.0.1:${port}`;

export default defineConfig({
  testDir: './e2e',
  workers: 1,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 30_000 },
  outputDir: '../artifacts/e2e/results',
  reporter: [['list']],
  webServer: {
    command: `../.venv/bin/quantsaas serve --host 127.0.0.1 --port ${port} --rate ${process.env.E2E_RATE ?? 200} --seed 7 --log-level warning`,
    url: `${base}/api/v1/instruments`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
  use: {
    baseURL: base,
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
    serviceWorkers: 'block',
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-dev-shm-usage',
        '--no-first-run',
        '--font-render-hinting=none',
      ],
    },
  },
});
