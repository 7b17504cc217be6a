// Plant overview: progress of the current inspection round and the device grid (coloured by
// status, filterable by area and status). Devices link to their detail view (#/device/ID).
import type { Device, Round } from './api';
import { byId, el, fmt_ago, fmt_score, fmt_time, reconcile, set_content } from './dom';

const STATUS_LABEL: Record<string, string> = {
  ok: 'OK',
  alarm: 'Alarm',
  missing: 'Missing',
  unknown: 'Not inspected',
};

export function status_label(status: string): string {
  return STATUS_LABEL[status] ?? status;
}

export function device_href(id: string): string {
  return `#/device/${encodeURIComponent(id)}`;
}

export function render_round(round: Round): void {
  const box = byId('round');
  const total = Math.max(0, round.total | 0);
  const done = Math.min(total, Math.max(0, round.done | 0));
  const pct = total > 0 ? Math.round((100 * done) / total) : 0;
  const sig = JSON.stringify(round);
  if (round.status === 'none' || !round.round_id) {
    set_content(box, sig, el('p', { class: 'empty' }, 'No inspection round has run yet.'));
    return;
  }
  const label = round.status === 'running' ? 'Running' : 'Finished';
  set_content(
    box,
    sig,
    el(
      'div',
      { class: 'round-head' },
      el('span', { class: `pill round-${round.status}` }, label),
      el('span', {}, ` Round ${round.round_id}: `),
      el('strong', { id: 'round-count' }, `${done} of ${total} devices`),
      el('span', { class: 'muted' }, ` (${pct} %)`),
    ),
    el('progress', {
      id: 'round-progress',
      max: total || 1,
      value: done,
      'aria-label': `Round progress: ${done} of ${total} devices inspected`,
    }),
    el(
      'p',
      { class: 'muted small' },
      `Started ${fmt_time(round.started)}`,
      round.finished ? ` · finished ${fmt_time(round.finished)}` : '',
    ),
  );
}

/** Keeps the area filter's options in sync with the areas present, preserving the selection. */
function sync_areas(devices: Device[]): void {
  const select = byId<HTMLSelectElement>('area-filter');
  const areas = Array.from(new Set(devices.map((d) => d.area || '(none)'))).sort();
  const wanted = ['', ...areas];
  const have = Array.from(select.options).map((o) => o.value);
  if (wanted.join('\n') === have.join('\n')) return;
  const current = select.value;
  select.replaceChildren(
    el('option', { value: '' }, 'All areas'),
    ...areas.map((a) => el('option', { value: a }, a)),
  );
  select.value = areas.includes(current) ? current : '';
}

function card_body(d: Device): (Node | string)[] {
  return [
    el(
      'a',
      { class: 'device-name', href: device_href(d.id) },
      d.name || d.id,
      el('span', { class: 'visually-hidden' }, `, status ${status_label(d.status)}`),
    ),
    el('span', { class: `pill status-${d.status}`, 'aria-hidden': 'true' }, status_label(d.status)),
    el(
      'dl',
      { class: 'device-meta' },
      el('dt', {}, 'ID'),
      el('dd', {}, d.id),
      el('dt', {}, 'Area'),
      el('dd', {}, d.area || '—'),
      el('dt', {}, 'Location'),
      el('dd', {}, d.location || '—'),
      el('dt', {}, 'Fused score'),
      el('dd', { class: 'score' }, fmt_score(d.last_fused_score)),
      el('dt', {}, 'Inspected'),
      el('dd', { title: fmt_time(d.last_inspected) }, fmt_ago(d.last_inspected)),
      el('dt', {}, 'Open alarms'),
      el('dd', { class: d.open_alarms > 0 ? 'alarm-count' : '' }, String(d.open_alarms ?? 0)),
    ),
  ];
}

export function render_devices(devices: Device[]): void {
  sync_areas(devices);
  const area = byId<HTMLSelectElement>('area-filter').value;
  const status = byId<HTMLSelectElement>('status-filter').value;
  const shown = devices.filter(
    (d) => (!area || (d.area || '(none)') === area) && (!status || d.status === status),
  );
  const grid = byId('device-grid');
  const empty = byId('devices-empty');
  const counts: Record<string, number> = {};
  for (const d of devices) counts[d.status] = (counts[d.status] ?? 0) + 1;
  byId('device-summary').textContent = devices.length
    ? `${devices.length} devices: ` +
      ['alarm', 'missing', 'ok', 'unknown']
        .filter((s) => counts[s])
        .map((s) => `${counts[s]} ${status_label(s).toLowerCase()}`)
        .join(', ')
    : '';
  empty.hidden = shown.length > 0;
  empty.textContent = devices.length
    ? 'No device matches the filter.'
    : 'No devices in the plant yet. Run `mmfuse demo` or `mmfuse inspect` to populate the store.';
  reconcile(
    grid,
    shown,
    (d) => d.id,
    (d) => {
      const li = el('li', { class: `device status-${d.status}` }, ...card_body(d));
      li.dataset.sig = JSON.stringify(d);
      return li;
    },
    (node, d) => {
      const sig = JSON.stringify(d);
      if (node.dataset.sig === sig) return;
      node.dataset.sig = sig;
      node.className = `device status-${d.status}`;
      node.replaceChildren(...card_body(d));
    },
  );
}
