// Shared helpers for the browser tests: locating playwright-core (installed under web/) and
// Debian's chromium, building web/dist, free loopback ports, waiting for HTTP readiness.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const web = join(repo, 'web');

/** Exit code ctest maps to "skipped" (SKIP_RETURN_CODE in tests/CMakeLists.txt). */
export const SKIP = 77;

export function skip(reason) {
  console.log(`SKIPPED: ${reason}`);
  process.exit(SKIP);
}

export function find_chromium() {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

/** Loads playwright-core from web/node_modules, or skips the test with the reason. */
export function load_playwright() {
  const chromium_path = find_chromium();
  if (!chromium_path) skip('no chromium (apt-get install chromium; or set CHROMIUM=/path)');
  try {
    const { chromium } = createRequire(join(web, 'package.json'))('playwright-core');
    return { chromium, chromium_path };
  } catch {
    skip('web/node_modules lacks playwright-core: run scripts/build_web.sh (npm ci) first');
  }
}

/** Rebuilds web/dist from web/src (esbuild, well under a second) so the test sees current sources. */
export function build_dist() {
  execFileSync(process.execPath, [join(web, 'build.mjs')], { stdio: 'inherit' });
}

export async function launch(chromium, chromium_path) {
  return chromium.launch({
    executablePath: chromium_path,
    // Root in CI and containers cannot use chromium's sandbox; the pages are our own, on loopback.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

export function free_port() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Polls `url` until it answers 2xx (or `deadline_ms` passes, then throws with the last error). */
export async function wait_http(url, deadline_ms = 30_000, alive = () => true) {
  const end = Date.now() + deadline_ms;
  let last = '';
  while (Date.now() < end) {
    if (!alive()) throw new Error(`server exited while waiting for ${url}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready after ${deadline_ms} ms: ${last}`);
}

export function artifacts_dir() {
  const dir = process.env.MMFUSE_ARTIFACTS ?? join(repo, 'build', 'artifacts');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Collects page errors and failed requests so a test can assert the page ran cleanly. */
export function watch_page(page) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  return problems;
}
