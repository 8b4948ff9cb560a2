import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { DASHBOARD_CSS } from './dashboard.js';

/**
 * The dashboard's files, served under /assets/ by name from a fixed list (no path from a
 * request ever reaches the file system): its own modules as tsc compiled them
 * (dist/gateway/api/{dashboard,present}/*.js, served at /assets/{dashboard,present}/), its style sheet, and the two libraries it uses
 * straight from node_modules — uPlot (charts) and morphdom (updating tables in place).
 */
export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

const require = createRequire(import.meta.url);
/** Compiled modules the page loads, by URL directory: /assets/dashboard/main.js imports ../present/format.js. */
const MODULE_DIRS = ['dashboard', 'present'] as const;
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

const LIBRARIES: Readonly<Record<string, { readonly module: string; readonly type: string }>> = {
  'uplot.js': { module: 'uplot/dist/uPlot.iife.min.js', type: JS },
  'uplot.min.css': { module: 'uplot/dist/uPlot.min.css', type: CSS },
  'morphdom.js': { module: 'morphdom/dist/morphdom-umd.min.js', type: JS },
};

/** Everything under /assets/, read once at start-up (a few hundred KiB). */
export async function loadAssets(): Promise<ReadonlyMap<string, Asset>> {
  const assets = new Map<string, Asset>();
  assets.set('dashboard.css', { type: CSS, body: Buffer.from(DASHBOARD_CSS) });
  for (const [name, { module, type }] of Object.entries(LIBRARIES)) assets.set(name, { type, body: await readFile(require.resolve(module)) });
  for (const dir of MODULE_DIRS) {
    const path = fileURLToPath(new URL(`./${dir}/`, import.meta.url));
    for (const file of await readdir(path)) {
      if (!file.endsWith('.js')) continue;
      // The source maps point into the source tree, which the member does not serve.
      const text = (await readFile(`${path}${file}`, 'utf8')).replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
      assets.set(`${dir}/${file}`, { type: JS, body: Buffer.from(text) });
    }
  }
  return assets;
}
