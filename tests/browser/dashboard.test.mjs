// Acceptance test of the dashboard on the real binary: `mmfuse demo` makes a plant in a temp
// folder, `mmfuse inspect` records rounds in its store, `mmfuse serve` serves it with the dashboard (default static root = web/dist beside the
// build tree), headless Chromium loads /, sees the demo's devices, acknowledges an alarm through
// the UI, and GET /v1/alarms confirms the store changed; then a device view and a text search over
// an index of the demo's images (tiny CLIP fixture). Screenshot: <build>/artifacts/dashboard.png.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { artifacts_dir, build_dist, launch, load_playwright, repo, skip, wait_http, watch_page } from './lib.mjs';

const binary = process.env.MMFUSE_BINARY;
if (!binary || !existsSync(binary)) skip('MMFUSE_BINARY is not set to the built mmfuse (run through ctest)');
const { chromium, chromium_path } = load_playwright();

const DEVICES = 6;
// A tiny random-weight CLIP fixture: search results are not meaningful, the flow is what is tested.
const MODEL = join(repo, 'tests/fixtures/clip/models/clip-tiny-quickgelu-p32');
const USER = 'playwright-operator';
let data;
let server;
let server_log = '';
let base;
let browser;
let page;
let problems;

async function api(path, init) {
  const r = await fetch(base + path, init);
  const body = await r.json();
  assert.ok(r.ok, `${path}: HTTP ${r.status} ${JSON.stringify(body)}`);
  return body;
}

/** Starts `mmfuse serve` on a free port (--port 0; it prints {"port":P} once bound). */
function start_server(args) {
  return new Promise((ok, fail) => {
    server = spawn(binary, ['serve', ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = /"port"\s*:\s*(\d+)/.exec(out);
      if (m) ok(Number(m[1]));
    });
    server.stderr.on('data', (d) => (server_log += d));
    server.on('exit', (code) => fail(new Error(`mmfuse serve exited (${code}) before listening:\n${server_log}`)));
  });
}

before(async () => {
  build_dist();
  data = mkdtempSync(join(tmpdir(), 'mmfuse-dash-'));
  const demo = spawnSync(binary, ['demo', '--devices', String(DEVICES), '--data', data, '--json'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(demo.status, 0, `mmfuse demo failed:\n${demo.stderr}`);
  // `demo` scores its own round in memory; `inspect` runs rounds over the plant it generated and
  // records them in the plant's store (two rounds, so the trend charts have a history).
  for (let round = 0; round < 2; round++) {
    const inspect = spawnSync(binary, ['inspect', '--plant', join(data, 'plant.yaml'), '--once', '--no-deliver'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(inspect.status, 0, `mmfuse inspect failed:\n${inspect.stderr}`);
  }
  // An image index over the demo's pictures, so the dashboard's search box is live.
  const index = join(data, 'index');
  const add = spawnSync(binary, ['index', 'add', '--index', index, '--model', MODEL, join(data, 'devices')], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(add.status, 0, `mmfuse index add failed:\n${add.stderr}`);
  // Serve what the demo left: a serve config if it wrote one, else its plant file (which names
  // the store and evidence folder).
  const config = join(data, 'mmfuse.yaml');
  const plant = existsSync(config) ? ['--config', config] : ['--plant', join(data, 'plant.yaml')];
  const args = [...plant, '--model', MODEL, '--index', index];
  const port = await start_server(args);
  base = `http://127.0.0.1:${port}`;
  await wait_http(`${base}/readyz`, 60_000, () => server.exitCode === null);
  browser = await launch(chromium, chromium_path);
  page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  problems = watch_page(page);
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  if (data) rmSync(data, { recursive: true, force: true });
});

test('the dashboard loads from the binary and shows the demo plant', async () => {
  const { devices } = await api('/v1/devices');
  assert.equal(devices.length, DEVICES, 'the demo plant has the devices asked for');
  await page.goto(`${base}/?poll=1000`);
  await page.waitForFunction((n) => document.querySelectorAll('#device-grid > li').length === n, DEVICES);
  for (const d of devices) {
    const card = page.locator(`#device-grid > li[data-key="${d.id}"]`);
    assert.match(await card.getAttribute('class'), new RegExp(`status-${d.status}`), d.id);
    assert.ok((await card.innerText()).includes(d.name || d.id), `card of ${d.id} names it`);
  }
  await page.waitForFunction(() => /Live/.test(document.querySelector('#conn').textContent));
  assert.doesNotMatch(await page.locator('#round').innerText(), /Loading/);
});

test('acknowledging an alarm in the UI changes the store', async () => {
  const open = (await api('/v1/alarms?acknowledged=false&limit=50')).alarms;
  assert.ok(open.length > 0, 'the demo plant raised alarms (it injects faults)');
  const target = open[0];
  const item = page.locator(`#alarm-list > li[data-key="${target.id}"]`);
  await item.waitFor();
  // Its evidence images are served by the binary under /evidence/ and load.
  if (target.evidence.length) {
    await page.waitForFunction(
      (id) => {
        const img = document.querySelector(`#alarm-list > li[data-key="${id}"] .thumb img`);
        return img && img.complete && img.naturalWidth > 0;
      },
      target.id,
      { timeout: 10_000 },
    );
  }
  await page.screenshot({ path: join(artifacts_dir(), 'dashboard.png'), fullPage: true });

  await item.locator('button.ack').click();
  await page.locator('#user-dialog').waitFor({ state: 'visible' });
  await page.fill('#user-input', USER);
  await page.click('#user-save');
  await page.waitForFunction(
    (id) => !document.querySelector(`#alarm-list > li[data-key="${id}"] button.ack`),
    target.id,
  );
  const acked = (await api('/v1/alarms?acknowledged=true&limit=200')).alarms.find((a) => String(a.id) === String(target.id));
  assert.ok(acked, `alarm ${target.id} is listed as acknowledged`);
  assert.equal(acked.acknowledged_by, USER);
  assert.ok(acked.acknowledged_at, 'acknowledged_at is set');
  const still_open = (await api('/v1/alarms?acknowledged=false&limit=200')).alarms;
  assert.ok(!still_open.some((a) => String(a.id) === String(target.id)), 'no longer open');
  await page.waitForFunction((id) => !document.querySelector(`#alarm-list > li[data-key="${id}"]`), target.id);
});

test('a device view shows its fused-score history from the store', async () => {
  const { devices } = await api('/v1/devices');
  const d = devices.find((x) => x.last_inspected) ?? devices[0];
  await page.click(`#device-grid > li[data-key="${d.id}"] a.device-name`);
  await page.locator('#fused-chart canvas').waitFor();
  await page.locator('#inspections tbody tr, #inspections .empty').first().waitFor();
  assert.ok((await page.locator('#inspections tbody tr').count()) > 0, 'inspections of the demo round listed');
  await page.screenshot({ path: join(artifacts_dir(), 'dashboard-device.png'), fullPage: true });
});

test('text search shows the indexed images as a grid', async () => {
  await page.click('a.back');
  await page.locator('#search-section').waitFor({ state: 'visible' });
  await page.fill('#search-input', 'a pump with an oil leak');
  await page.press('#search-input', 'Enter');
  await page.locator('#search-results figure').first().waitFor();
  assert.equal(await page.locator('#search-results figure').count(), 12, 'top 12 of the indexed images');
  await page.locator('#search-results figure').last().scrollIntoViewIfNeeded(); // thumbnails load lazily
  await page.waitForFunction(() =>
    Array.from(document.querySelectorAll('#search-results img')).every((i) => i.complete && i.naturalWidth > 0),
  );
});

test('the page raised no script errors', () => {
  assert.deepEqual(problems, []);
});
