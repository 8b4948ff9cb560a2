/**
 * A real browser for the dashboard tests: Debian's headless Chromium (test/run.sh installs
 * the `chromium` package) driven by playwright-core, which never downloads a browser of its
 * own. Each test gets a fresh profile directory, removed at teardown, and can keep
 * screenshots under test/artifacts/ (or $BLOCKGATE_TEST_ARTIFACTS).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './blockgate-cli.js';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = process.env.BLOCKGATE_TEST_ARTIFACTS ?? join(ROOT, 'test', 'artifacts');

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Errors the page logged or threw: a dashboard test fails on any. */
  readonly pageErrors: string[];
  screenshot(name: string): Promise<string>;
}

export async function openBrowser(t: { teardown(fn: () => unknown): void }, artifactDir: string): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'blockgate-ops-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: FLAGS,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    timeout: 120_000,
  });
  t.teardown(async () => {
    await context.close().catch(() => undefined);
    await rm(profile, { recursive: true, force: true });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(msg.text());
  });
  const dir = join(ARTIFACTS, artifactDir);
  await mkdir(dir, { recursive: true });
  return {
    context,
    page,
    pageErrors,
    async screenshot(name) {
      const path = join(dir, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
  };
}
