import { mkdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig } from '@playwright/test';

// End-to-end tests against a real `quantsaas serve` on the simulator, started here on a fixed
// loopback port (E2E_PORT) and stopped afterwards. Debian's Chromium only: never a downloaded one.
// The server runs as the demo does (anonymous visitors get the `demo` tier), with a throw-away
// accounts database and data directory: artifacts/e2e/server, emptied at the start of each run
// (or E2E_DATA_DIR, left as it is). Test workers load this file again: the env variable set here
// tells them not to empty it under the running server.
const port = Number(process.env.E2E_PORT ?? 18765);
const base = `http://127.0.0.1:${port}`;
if (!process.env.E2E_DATA_DIR) {
  process.env.E2E_DATA_DIR = resolve(import.meta.dirname, '../artifacts/e2e/server');
  rmSync(process.env.E2E_DATA_DIR, { recursive: true, force: true });
  mkdirSync(process.env.E2E_DATA_DIR, { recursive: true });
}
const dataDir = process.env.E2E_DATA_DIR;
const server = [
  '../.venv/bin/quantsaas serve --host 127.0.0.1',
  `--port ${port} --rate ${process.env.E2E_RATE ?? 200} --seed 7 --log-level warning`,
  '--anonymous-tier demo',
  `--data-dir '${dataDir}' --accounts-url 'sqlite+aiosqlite:///${dataDir}/accounts.db'`,
].join(' ');

export default defineConfig({
  testDir: './e2e',
  workers: 1,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 30_000 },
  outputDir: '../artifacts/e2e/results',
  reporter: [['list']],
  webServer: {
    command: server,
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
