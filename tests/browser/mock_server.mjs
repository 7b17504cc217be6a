// A small stand-in for `mmfuse serve`: serves web/dist and canned plant JSON in the agreed shapes
// (docs/dashboard.md), with alarms that can be acknowledged. Used by the fast UI test and for
// working on the dashboard without a plant: `node tests/browser/mock_server.mjs [--port 8089]`.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const default_dist = resolve(here, '../../web/dist');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Builds a plant of `n` devices (deterministic) with a few alarms, readings and inspections. */
export function make_plant(n = 6, now = Date.now()) {
  const iso = (ms) => new Date(ms).toISOString();
  const areas = ['boiler-house', 'pump-station', 'compressor-hall'];
  const statuses = ['ok', 'alarm', 'ok', 'missing', 'alarm', 'unknown'];
  const devices = [];
  for (let i = 0; i < n; i++) {
    const status = statuses[i % statuses.length];
    devices.push({
      id: `dev-${String(i + 1).padStart(3, '0')}`,
      name: `Pump ${i + 1}`,
      area: areas[i % areas.length],
      location: `Row ${1 + (i % 3)}, bay ${1 + Math.floor(i / 3)}`,
      status,
      last_fused_score: status === 'unknown' ? null : status === 'alarm' ? 0.7 : 0.1,
      last_inspected: status === 'unknown' ? null : iso(now - 60_000 * (i + 1)),
      open_alarms: 0,
    });
  }
  const alarms = [];
  let next_id = 1;
  for (const d of devices.filter((x) => x.status === 'alarm')) {
    for (const type of ['camera', 'infrared']) {
      alarms.push({
        id: next_id++,
        type,
        device_id: d.id,
        point_id: 'p1',
        fused_score: type === 'camera' ? 0.7 : 0.4,
        modalities: { camera: type === 'camera' ? 0.91 : 0.1, infrared: 0.8, sound: 0.2, sensors: 0.05 },
        evidence: [`/evidence/${d.id}/${type}-annotated.svg`, `/evidence/${d.id}/${type}-raw.svg`],
        created: iso(now - 3_600_000 * next_id),
        acknowledged: false,
        acknowledged_by: null,
        acknowledged_at: null,
      });
    }
  }
  const trend = (id) => {
    const pts = (f) => Array.from({ length: 30 }, (_, k) => [iso(now - (30 - k) * 120_000), f(k)]);
    const seed = id.charCodeAt(id.length - 1);
    return {
      device_id: id,
      channels: ['temp', 'vibration'],
      sensors: {
        temp: pts((k) => 60 + 5 * Math.sin((k + seed) / 4)),
        vibration: pts((k) => 1.2 + 0.3 * Math.cos((k + seed) / 3) + (k === 20 ? 3 : 0)),
      },
      fused: pts((k) => (k % 10 === 9 ? 0.7 : 0.08 + 0.02 * Math.sin(k))),
    };
  };
  const inspections = (id) =>
    Array.from({ length: 3 }, (_, k) => ({
      id: 100 * devices.findIndex((d) => d.id === id) + k,
      round_id: `r${3 - k}`,
      device_id: id,
      point_id: 'p1',
      started: iso(now - (k + 1) * 600_000),
      finished: iso(now - (k + 1) * 600_000 + 900),
      fused_score: k === 0 ? 0.7 : 0.1,
      alarm: k === 0,
      fusion_rule: 'weighted_vote',
      modalities: [
        { modality: 'camera', status: 'ok', score: 0.91, decision: true, message: '', evidence: [`/evidence/${id}/camera-annotated.svg`] },
        { modality: 'infrared', status: 'ok', score: 0.2, decision: false, message: '', evidence: [] },
        { modality: 'sound', status: 'missing', score: null, decision: null, message: 'no recording', evidence: [] },
      ],
    }));
  return {
    devices,
    alarms,
    trend,
    inspections,
    round: { round_id: 'r3', status: 'running', total: n, done: Math.max(0, n - 2), started: iso(now - 120_000), finished: null },
  };
}

function evidence_svg(name) {
  const hue = [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 0);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" viewBox="0 0 320 240">
<rect width="320" height="240" fill="hsl(${hue} 30% 35%)"/><circle cx="160" cy="120" r="60" fill="none" stroke="#ffcc00" stroke-width="6"/>
<text x="10" y="230" font-family="sans-serif" font-size="14" fill="#fff">${name.replace(/[<&>]/g, '')}</text></svg>`;
}

/**
 * Starts the mock on 127.0.0.1 (`port` 0 = any free port). Options: devices (count), dist (static
 * root), index (features.index), auth (API key string), with_plant (false: no plant routes). Resolves to { url, plant, failing, close() }
 * (`failing`: a Set of paths made to answer HTTP 500).
 */
export function start_mock({ port = 0, devices = 6, dist = default_dist, index = true, auth = '', with_plant = true } = {}) {
  const plant = make_plant(devices);
  const json = (res, code, body) => {
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const fail = (res, code, type, message) => json(res, code, { error: { type, message } });
  const open_counts = () => {
    for (const d of plant.devices) {
      d.open_alarms = plant.alarms.filter((a) => a.device_id === d.id && !a.acknowledged).length;
    }
  };
  open_counts();

  const failing = new Set(); // paths that answer 500, to test per-panel error states
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const p = url.pathname;
    if (failing.has(p)) return fail(res, 500, 'internal', `injected failure of ${p}`);
    if (auth && (p.startsWith('/v1/') || p.startsWith('/evidence/'))) {
      const h = req.headers.authorization ?? '';
      if (!h) return fail(res, 401, 'unauthorized', 'missing Authorization: Bearer key');
      if (h !== `Bearer ${auth}`) return fail(res, 403, 'forbidden', 'wrong API key');
    }
    let body = '';
    for await (const chunk of req) body += chunk;
    try {
      if (req.method === 'GET' && p === '/info') {
        return json(res, 200, {
          version: '0.1.0-mock',
          models: [],
          limits: { max_batch: 32, max_body_bytes: 1 << 24, max_image_pixels: 50_000_000 },
          features: { plant: with_plant, index, auth: Boolean(auth) },
        });
      }
      if (!with_plant && p.startsWith('/v1/') && p !== '/v1/search') {
        return fail(res, 404, 'not_found', `no route for ${req.method} ${p}`);
      }
      if (req.method === 'GET' && p === '/v1/devices') return json(res, 200, { devices: plant.devices });
      if (req.method === 'GET' && p === '/v1/rounds/current') return json(res, 200, plant.round);
      let m = /^\/v1\/devices\/([^/]+)\/trend$/.exec(p);
      if (req.method === 'GET' && m) {
        const id = decodeURIComponent(m[1]);
        if (!plant.devices.some((d) => d.id === id)) return fail(res, 404, 'not_found', `no device ${id}`);
        return json(res, 200, plant.trend(id));
      }
      if (req.method === 'GET' && p === '/v1/inspections') {
        const id = url.searchParams.get('device');
        return json(res, 200, { inspections: id ? plant.inspections(id) : [] });
      }
      if (req.method === 'GET' && p === '/v1/alarms') {
        const ack = url.searchParams.get('acknowledged');
        const dev = url.searchParams.get('device');
        const list = plant.alarms
          .filter((a) => ack === null || String(a.acknowledged) === ack)
          .filter((a) => !dev || a.device_id === dev)
          .sort((a, b) => b.id - a.id);
        return json(res, 200, { alarms: list.slice(0, Number(url.searchParams.get('limit')) || 100) });
      }
      m = /^\/v1\/alarms\/([^/]+)\/ack$/.exec(p);
      if (req.method === 'POST' && m) {
        const alarm = plant.alarms.find((a) => String(a.id) === decodeURIComponent(m[1]));
        if (!alarm) return fail(res, 404, 'not_found', `no alarm ${m[1]}`);
        let user;
        try {
          user = JSON.parse(body).user;
        } catch {
          return fail(res, 400, 'bad_request', 'body is not JSON');
        }
        if (typeof user !== 'string' || !user) return fail(res, 400, 'bad_request', 'field "user" must be a non-empty string');
        if (!alarm.acknowledged) {
          Object.assign(alarm, { acknowledged: true, acknowledged_by: user, acknowledged_at: new Date().toISOString() });
          open_counts();
        }
        return json(res, 200, alarm);
      }
      if (req.method === 'GET' && p === '/v1/stats/alarms') {
        const by_type = {};
        const by_day = {};
        for (const a of plant.alarms) {
          by_type[a.type] = (by_type[a.type] ?? 0) + 1;
          const day = a.created.slice(0, 10);
          by_day[day] = (by_day[day] ?? 0) + 1;
        }
        return json(res, 200, { by_type, by_day: Object.entries(by_day).map(([day, count]) => ({ day, count })) });
      }
      if (req.method === 'POST' && p === '/v1/search') {
        const q = JSON.parse(body);
        if (typeof q.text !== 'string') return fail(res, 400, 'bad_request', 'field "text" must be a string');
        const k = Math.min(Number(q.top_k) || 5, 8);
        return json(res, 200, {
          results: Array.from({ length: k }, (_, i) => ({
            path: `/data/images/${q.text.replace(/\W+/g, '_')}_${i}.svg`,
            score: 0.33 - i * 0.01,
            id: i,
            url: `/evidence/search/${i}.svg`,
          })),
        });
      }
      if (req.method === 'GET' && p.startsWith('/evidence/')) {
        res.writeHead(200, { 'Content-Type': 'image/svg+xml' });
        return res.end(evidence_svg(p.slice('/evidence/'.length)));
      }
      if (p.startsWith('/v1/')) return fail(res, 404, 'not_found', `no route ${req.method} ${p}`);
      // Static files from dist, never outside it.
      const rel = normalize(decodeURIComponent(p === '/' ? '/index.html' : p)).replace(/^([/\\])+/, '');
      const file = resolve(dist, rel);
      if (!file.startsWith(dist + sep)) return fail(res, 404, 'not_found', 'outside static root');
      const data = await readFile(file).catch(() => null);
      if (!data) return fail(res, 404, 'not_found', `no file ${p}`);
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
      return res.end(data);
    } catch (e) {
      return fail(res, 500, 'internal', String(e));
    }
  });
  return new Promise((ok) => {
    server.listen(port, '127.0.0.1', () => {
      const { port: p } = server.address();
      const close = () => {
        server.closeAllConnections?.();
        return new Promise((c) => server.close(c));
      };
      ok({ url: `http://127.0.0.1:${p}`, plant, failing, close });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : 8089;
  const m = await start_mock({ port, dist: join(default_dist) });
  console.log(`mock mmfuse serve on ${m.url}`);
}
