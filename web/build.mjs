// Bundles the dashboard into dist/ (index.html, app.js, app.css) with esbuild: everything,
// uPlot included, is local so the dashboard works offline. `node build.mjs --watch` rebuilds on change.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const watch = process.argv.includes('--watch');

const options = {
  absWorkingDir: here,
  entryPoints: { app: 'src/main.ts' },
  outdir: dist,
  entryNames: '[name]',
  bundle: true,
  minify: !watch,
  sourcemap: 'linked',
  target: ['chrome100', 'firefox100', 'safari15'],
  legalComments: 'linked',
  logLevel: 'warning',
};
// The stylesheet is a second entry so it lands as dist/app.css (with uPlot's CSS inlined).
const css = { ...options, entryPoints: { app: 'src/app.css' } };

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await copyFile(join(here, 'src/index.html'), join(dist, 'index.html'));
if (watch) {
  for (const o of [options, css]) await (await esbuild.context(o)).watch();
  console.log('watching web/src …');
} else {
  await Promise.all([esbuild.build(options), esbuild.build(css)]);
  // Version the asset URLs by content so a browser never pairs a new page with a cached old bundle.
  let html = await readFile(join(dist, 'index.html'), 'utf8');
  for (const name of ['app.js', 'app.css']) {
    const hash = createHash('sha256').update(await readFile(join(dist, name))).digest('hex').slice(0, 12);
    html = html.replace(`"${name}"`, `"${name}?v=${hash}"`);
  }
  await writeFile(join(dist, 'index.html'), html);
  console.log(`web: built ${dist}`);
}
