// Dashboard entry: reads /info, routes between the overview (#/) and a device (#/device/ID),
// and polls the plant routes every few seconds (?poll=MS overrides; paused while the tab is hidden).
import {
  ApiError,
  get_alarms,
  get_devices,
  get_info,
  get_inspections,
  get_round,
  get_stats,
  get_trend,
  set_api_key,
  type Device,
  type Info,
} from './api';
import { init_user, render_alarms, set_alarm_changed_handler } from './alarms';
import { render_device_head, render_inspections, render_trend, reset_device_view, since_iso } from './device';
import { byId } from './dom';
import { init_lightbox } from './lightbox';
import { render_devices, render_round } from './overview';
import { init_chat } from './chat';
import { init_search } from './search';
import { render_stats } from './stats';

const params = new URLSearchParams(location.search);
const POLL_MS = Math.max(500, Number(params.get('poll')) || 5000);

let info: Info | null = null;
let devices: Device[] = [];
let device_map = new Map<string, Device>();
let refreshing = false;
let timer = 0;

type Route = { view: 'overview' } | { view: 'device'; id: string };

function route(): Route {
  const m = /^#\/device\/(.+)$/.exec(location.hash);
  if (m) {
    try {
      return { view: 'device', id: decodeURIComponent(m[1]) };
    } catch {
      // Malformed escape in a hand-typed URL: fall back to the overview.
    }
  }
  return { view: 'overview' };
}

/** Shows an error for one panel, or clears it (message ''). */
function panel_error(id: string, message: string): void {
  const box = byId(id);
  box.hidden = !message;
  box.textContent = message;
}

function describe(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 401 || e.status === 403) return `${e.message} — set an API key (button above).`;
    return e.message;
  }
  return (e as Error).message ?? String(e);
}

function set_connection(ok: boolean, message: string): void {
  const conn = byId('conn');
  conn.className = ok ? 'conn ok' : 'conn down';
  conn.textContent = message;
}

/** Runs `load` for a panel; on failure shows the error in the panel and rethrows for the summary. */
async function panel<T>(error_id: string, load: () => Promise<T>, show: (v: T) => void): Promise<void> {
  try {
    const v = await load();
    panel_error(error_id, '');
    show(v);
  } catch (e) {
    panel_error(error_id, describe(e));
    throw e;
  }
}

async function refresh_devices(): Promise<void> {
  devices = await get_devices();
  device_map = new Map(devices.map((d) => [d.id, d]));
}

async function refresh_overview(): Promise<PromiseSettledResult<void>[]> {
  if (info?.features?.plant === false) return []; // nothing to poll: only search, if any
  const ack_tab = byId('alarm-tabs').querySelector<HTMLButtonElement>('[aria-pressed="true"]');
  const acknowledged = ack_tab?.dataset.ack === 'true';
  const days = Number(byId<HTMLSelectElement>('stats-days').value) || 7;
  const devices_loaded = panel('devices-error', refresh_devices, () => render_devices(devices));
  // Alarms name their devices, so they render after the device list (or its failure).
  const alarms_loaded = devices_loaded
    .catch(() => undefined)
    .then(() =>
      panel(
        'alarms-error',
        () => get_alarms({ acknowledged, limit: 50 }),
        (alarms) =>
          render_alarms(
            byId('alarm-list'),
            byId('alarms-empty'),
            alarms,
            device_map,
            acknowledged ? 'No acknowledged alarms yet.' : 'No open alarms. All clear.',
          ),
      ),
    );
  return Promise.allSettled([
    panel('round-error', get_round, render_round),
    devices_loaded,
    alarms_loaded,
    panel('stats-error', () => get_stats(days), (stats) => render_stats(stats, days)),
  ]);
}

async function refresh_device(id: string): Promise<PromiseSettledResult<void>[]> {
  reset_device_view(id);
  return Promise.allSettled([
    panel('device-error', refresh_devices, () => render_device_head(id, device_map.get(id))),
    panel('trend-error', () => get_trend(id, since_iso()), render_trend),
    panel('inspections-error', () => get_inspections(id, 20), render_inspections),
    panel(
      'device-alarms-error',
      () => get_alarms({ device: id, limit: 20 }),
      (alarms) =>
        render_alarms(
          byId('device-alarm-list'),
          byId('device-alarms-empty'),
          alarms,
          device_map,
          'No alarms for this device.',
        ),
    ),
  ]);
}

async function refresh(): Promise<void> {
  if (refreshing) return;
  refreshing = true;
  try {
    if (!info) {
      try {
        info = await get_info();
        apply_info(info);
      } catch (e) {
        // Without /info the plant routes may still answer; carry on and report below.
        if (e instanceof ApiError && e.offline) throw e;
      }
    }
    const r = route();
    const results = r.view === 'device' ? await refresh_device(r.id) : await refresh_overview();
    const failures = results.filter((x) => x.status === 'rejected') as PromiseRejectedResult[];
    const offline = failures.some((f) => f.reason instanceof ApiError && f.reason.offline);
    const time = new Date().toLocaleTimeString();
    if (offline) set_connection(false, `Server unreachable — retrying (last try ${time})`);
    else if (failures.length) set_connection(false, `Partly updated ${time}: ${failures.length} panel(s) failed`);
    else set_connection(true, `Live · updated ${time}`);
  } catch (e) {
    set_connection(false, `Server unreachable — retrying (${describe(e)})`);
  } finally {
    refreshing = false;
    document.body.dataset.loaded = 'true';
  }
}

function schedule(): void {
  clearTimeout(timer);
  timer = window.setTimeout(async () => {
    if (!document.hidden) await refresh();
    schedule();
  }, POLL_MS);
}

function apply_info(i: Info): void {
  byId('version').textContent = i.version ? `mmfuse ${i.version}` : '';
  byId('search-section').hidden = !i.features?.index;
  init_chat(i.features?.generation === true);
  byId('key-btn').hidden = !i.features?.auth;
  const no_plant = i.features?.plant === false;
  byId('no-plant').hidden = !no_plant;
  for (const node of Array.from(document.querySelectorAll<HTMLElement>('.plant-only'))) node.hidden = no_plant;
}

function show_route(): void {
  const r = route();
  const overview = byId('view-overview');
  const device = byId('view-device');
  overview.hidden = r.view !== 'overview';
  device.hidden = r.view !== 'device';
  if (r.view === 'device') {
    reset_device_view(r.id);
    document.title = `${r.id} · mmfuse plant`;
    byId('device-title').focus();
  } else {
    document.title = 'mmfuse plant dashboard';
  }
  void refresh();
}

function init_controls(): void {
  for (const id of ['area-filter', 'status-filter']) {
    byId(id).addEventListener('change', () => render_devices(devices));
  }
  byId('stats-days').addEventListener('change', () => void refresh());
  byId('range-select').addEventListener('change', () => void refresh());
  const tabs = byId('alarm-tabs');
  tabs.addEventListener('click', (e) => {
    const button = (e.target as HTMLElement).closest('button');
    if (!button) return;
    for (const b of Array.from(tabs.querySelectorAll('button'))) b.setAttribute('aria-pressed', String(b === button));
    byId('alarm-list').replaceChildren();
    void refresh();
  });
  byId('refresh-btn').addEventListener('click', () => void refresh());
  byId('key-btn').addEventListener('click', () => {
    const key = prompt('API key for this server (stored in this browser only; empty to clear):') ?? null;
    if (key === null) return;
    set_api_key(key.trim());
    info = null;
    void refresh();
  });
  set_alarm_changed_handler(() => void refresh());
  window.addEventListener('hashchange', show_route);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) void refresh();
  });
}

function main(): void {
  byId('poll-note').textContent = `Refreshes every ${Math.round(POLL_MS / 100) / 10} s.`;
  init_lightbox();
  init_user();
  init_search();
  init_controls();
  show_route();
  schedule();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();

// Exposed for debugging from the browser console: mmfuse.refresh().
(window as unknown as { mmfuse: object }).mmfuse = { refresh };
