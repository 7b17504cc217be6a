// Fast UI test of the dashboard against the mock server (canned plant in the agreed JSON shapes):
// filters, acknowledge flow (name asked once), lightbox, device charts, search, offline state.
// The acceptance test against the real binary is dashboard.test.mjs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { build_dist, launch, load_playwright, watch_page, web } from './lib.mjs';
import { start_mock } from './mock_server.mjs';

const { chromium, chromium_path } = load_playwright();
let mock;
let browser;
let page;
let problems;

before(async () => {
  build_dist();
  mock = await start_mock({ devices: 6 });
  browser = await launch(chromium, chromium_path);
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  problems = watch_page(page);
  await page.goto(`${mock.url}/?poll=700`);
});

after(async () => {
  await browser?.close();
  await mock?.close();
});

test('overview lists every device with its status and filters by area', async () => {
  const cards = page.locator('#device-grid > li');
  await cards.first().waitFor();
  assert.equal(await cards.count(), 6);
  for (const d of mock.plant.devices) {
    const card = page.locator(`#device-grid > li[data-key="${d.id}"]`);
    assert.match(await card.getAttribute('class'), new RegExp(`status-${d.status}`));
    assert.match(await card.innerText(), new RegExp(d.name));
  }
  await page.selectOption('#area-filter', 'pump-station');
  const want = mock.plant.devices.filter((d) => d.area === 'pump-station').length;
  await page.waitForFunction((n) => document.querySelectorAll('#device-grid > li').length === n, want);
  await page.selectOption('#area-filter', '');
  await page.waitForFunction(() => document.querySelectorAll('#device-grid > li').length === 6);
  assert.match(await page.locator('#round').innerText(), /4 of 6 devices/);
});

test('acknowledging asks the name once, updates the server and the list', async () => {
  const first = mock.plant.alarms.find((a) => !a.acknowledged);
  const item = page.locator(`#alarm-list > li[data-key="${first.id}"]`);
  await item.locator('button.ack').click();
  const dialog = page.locator('#user-dialog');
  await dialog.waitFor({ state: 'visible' });
  await page.fill('#user-input', 'Ada Operator');
  await page.click('#user-save');
  await page.waitForFunction(
    (id) => !document.querySelector(`#alarm-list > li[data-key="${id}"] button.ack`),
    first.id,
  );
  assert.equal(first.acknowledged, true);
  assert.equal(first.acknowledged_by, 'Ada Operator');
  assert.equal(await page.evaluate(() => localStorage.getItem('mmfuse.user')), 'Ada Operator');
  // The open list drops it on the next poll; the second acknowledgement does not ask again.
  await page.waitForFunction((id) => !document.querySelector(`#alarm-list > li[data-key="${id}"]`), first.id);
  const second = mock.plant.alarms.find((a) => !a.acknowledged);
  await page.locator(`#alarm-list > li[data-key="${second.id}"] button.ack`).click();
  assert.equal(await dialog.isVisible(), false);
  await page.waitForFunction((id) => !document.querySelector(`#alarm-list > li[data-key="${id}"]`), second.id);
  assert.equal(second.acknowledged_by, 'Ada Operator');
  await page.click('#alarm-tabs button[data-ack="true"]');
  await page.locator(`#alarm-list > li[data-key="${first.id}"]`).waitFor();
  assert.match(await page.locator(`#alarm-list > li[data-key="${first.id}"]`).innerText(), /Acknowledged by Ada Operator/);
  await page.click('#alarm-tabs button[data-ack="false"]');
});

test('evidence thumbnails open full size in a dialog that Escape closes', async () => {
  const thumb = page.locator('#alarm-list .thumb').first();
  await thumb.waitFor();
  const url = await thumb.getAttribute('data-url');
  await thumb.click();
  await page.locator('#lightbox').waitFor({ state: 'visible' });
  await page.waitForFunction(() => document.querySelector('#lightbox-img').naturalWidth > 0);
  assert.equal(new URL(await page.locator('#lightbox-img').getAttribute('src'), mock.url).pathname, url);
  await page.keyboard.press('Escape');
  await page.locator('#lightbox').waitFor({ state: 'hidden' });
});

test('statistics show counts by type', async () => {
  const text = await page.locator('#stats-type').innerText();
  assert.match(text, /camera\s+2/);
  assert.match(text, /infrared\s+2/);
});

test('device view draws fused-score and sensor charts and lists inspections', async () => {
  await page.click('#device-grid > li[data-key="dev-002"] a.device-name');
  await page.waitForURL(/#\/device\/dev-002$/);
  await page.locator('#fused-chart canvas').waitFor();
  assert.equal(await page.locator('#sensor-charts figure').count(), 2);
  assert.equal(await page.locator('#device-title').innerText(), 'Pump 2');
  await page.locator('#inspections tbody tr').first().waitFor();
  assert.equal(await page.locator('#inspections tbody tr').count(), 3);
  assert.match(await page.locator('#fused-chart').innerText(), /alarm threshold/);
  await page.click('a.back');
  await page.locator('#view-overview').waitFor({ state: 'visible' });
});

test('search shows a grid of images when the server has an index', async () => {
  await page.locator('#search-section').waitFor({ state: 'visible' });
  await page.fill('#search-input', 'oil leak');
  await page.click('#search-form button[type="submit"]');
  await page.locator('#search-results figure').first().waitFor();
  assert.equal(await page.locator('#search-results figure').count(), 8);
  assert.match(await page.locator('#search-status').innerText(), /8 results/);
});

test('a failing route shows its error in its own panel only', async () => {
  mock.failing.add('/v1/stats/alarms');
  await page.locator('#stats-error').waitFor({ state: 'visible' });
  assert.match(await page.locator('#stats-error').innerText(), /injected failure/);
  assert.equal(await page.locator('#devices-error').isVisible(), false);
  assert.match(await page.locator('#conn').innerText(), /1 panel\(s\) failed/);
  mock.failing.delete('/v1/stats/alarms');
  await page.locator('#stats-error').waitFor({ state: 'hidden' });
  problems.splice(0, problems.length, ...problems.filter((x) => !/status of 500/.test(x)));
});

test('an unreachable server is reported, and the page recovers', async () => {
  await mock.close();
  await page.waitForFunction(() => /unreachable/.test(document.querySelector('#conn').textContent));
  assert.equal(await page.locator('#device-grid > li').count(), 6, 'last data stays visible');
  const port = Number(new URL(mock.url).port);
  mock = await start_mock({ devices: 6, port });
  await page.waitForFunction(() => /Live/.test(document.querySelector('#conn').textContent));
  // Failed fetches while the server was down are expected console noise.
  for (let i = problems.length - 1; i >= 0; i--) {
    if (/ERR_CONNECTION_REFUSED|Failed to load resource/.test(problems[i])) problems.splice(i, 1);
  }
});

/** Runs axe-core (WCAG 2 A/AA rules) on the page; returns serious/critical violations as text. */
async function axe_violations() {
  const axe_path = createRequire(join(web, 'package.json')).resolve('axe-core/axe.min.js');
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: axe_path });
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa'] } }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

test('overview and device view pass axe-core WCAG 2.1 AA checks (serious/critical)', async () => {
  await page.goto(`${mock.url}/?poll=700#/`);
  await page.locator('#device-grid > li').first().waitFor();
  await page.locator('#alarm-list > li, #alarms-empty:not([hidden])').first().waitFor();
  assert.deepEqual(await axe_violations(), []);
  await page.goto(`${mock.url}/?poll=700#/device/dev-002`);
  await page.locator('#inspections tbody tr').first().waitFor();
  assert.deepEqual(await axe_violations(), []);
  await page.goto(`${mock.url}/?poll=700#/`);
});

test('with API keys on, the page asks for a key and then loads', async () => {
  const secured = await start_mock({ devices: 3, auth: 'test-key-0123' });
  const p = await browser.newPage();
  try {
    await p.goto(`${secured.url}/?poll=700`);
    await p.locator('#devices-error').waitFor({ state: 'visible' });
    assert.match(await p.locator('#devices-error').innerText(), /API key/);
    p.once('dialog', (d) => d.accept('test-key-0123'));
    await p.click('#key-btn');
    await p.waitForFunction(() => document.querySelectorAll('#device-grid > li').length === 3);
    assert.equal(await p.locator('#devices-error').isVisible(), false);
    // Evidence images are fetched with the key too.
    await p.waitForFunction(() => {
      const img = document.querySelector('#alarm-list .thumb img');
      return img && img.complete && img.naturalWidth > 0;
    });
  } finally {
    await p.close();
    await secured.close();
  }
});

test('a server without a plant gets a clear notice instead of empty panels', async () => {
  const bare = await start_mock({ with_plant: false, index: true });
  const p = await browser.newPage();
  const errors = watch_page(p);
  try {
    await p.goto(`${bare.url}/?poll=700`);
    await p.locator('#no-plant').waitFor({ state: 'visible' });
    assert.equal(await p.locator('#device-grid').isVisible(), false);
    assert.equal(await p.locator('#search-section').isVisible(), true);
    await p.waitForFunction(() => /Live/.test(document.querySelector('#conn').textContent));
    assert.deepEqual(errors, [], 'no plant route was polled');
  } finally {
    await p.close();
    await bare.close();
  }
});

test('the page raised no script errors', () => {
  assert.deepEqual(problems, []);
});
