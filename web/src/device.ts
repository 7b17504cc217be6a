// Per-device view (#/device/ID): header with status, sensor trend charts (one per channel),
// fused-score history against the alarm threshold, recent inspections with per-modality results,
// and the device's alarms.
import type { Device, Inspection, Trend } from './api';
import { TimeChart } from './charts';
import { byId, el, epoch_s, fmt_score, fmt_time, reconcile, set_content } from './dom';
import { thumbnail } from './lightbox';
import { status_label } from './overview';

/** The chapter's fusion rule raises an alarm at a fused score of 0.3. */
export const ALARM_THRESHOLD = 0.3;

const PALETTE = ['#0b5cad', '#1b7f3b', '#8a4b00', '#6a1b9a', '#00695c', '#ad1457'];

let shown_device = '';
const sensor_charts = new Map<string, TimeChart>();
let fused_chart: TimeChart | null = null;

/** Drops the charts of the previous device (called when the view switches). */
export function reset_device_view(id: string): void {
  if (id === shown_device) return;
  shown_device = id;
  for (const c of sensor_charts.values()) c.destroy();
  sensor_charts.clear();
  fused_chart?.destroy();
  fused_chart = null;
  for (const box of ['device-head', 'inspections']) {
    const node = byId(box);
    delete node.dataset.sig;
    node.replaceChildren();
  }
  byId('device-title').textContent = id;
}

function range_hours(): number {
  return Number(byId<HTMLSelectElement>('range-select').value) || 24;
}

export function since_iso(): string {
  return new Date(Date.now() - range_hours() * 3600_000).toISOString();
}

/** The charts' x axis: the chosen range ending now, so sparse data is shown at its true time. */
function time_window(): [number, number] {
  const now = Date.now() / 1000;
  return [now - range_hours() * 3600, now + 60];
}

export function render_device_head(id: string, device: Device | undefined): void {
  byId('device-title').textContent = device ? device.name || id : id;
  const head = byId('device-head');
  if (!device) {
    set_content(head, 'missing', el('p', { class: 'empty' }, `Device ${id} is not in the plant.`));
    return;
  }
  set_content(
    head,
    JSON.stringify(device),
    el('span', { class: `pill status-${device.status}` }, status_label(device.status)),
    el(
      'dl',
      { class: 'device-meta wide' },
      el('dt', {}, 'ID'),
      el('dd', {}, device.id),
      el('dt', {}, 'Area'),
      el('dd', {}, device.area || '—'),
      el('dt', {}, 'Location'),
      el('dd', {}, device.location || '—'),
      el('dt', {}, 'Last fused score'),
      el('dd', {}, fmt_score(device.last_fused_score)),
      el('dt', {}, 'Last inspected'),
      el('dd', {}, fmt_time(device.last_inspected)),
      el('dt', {}, 'Open alarms'),
      el('dd', {}, String(device.open_alarms ?? 0)),
    ),
  );
}

function points_to_xy(points: [string, number][] | undefined): [number[], number[]] {
  const xy = (points ?? [])
    .map(([t, v]) => [epoch_s(t), Number(v)] as [number, number])
    .filter(([x, v]) => Number.isFinite(x) && Number.isFinite(v))
    .sort((a, b) => a[0] - b[0]);
  return [xy.map((p) => p[0]), xy.map((p) => p[1])];
}

export function render_trend(trend: Trend): void {
  const fused_box = byId('fused-chart');
  if (!fused_chart) {
    fused_chart = new TimeChart({
      title: 'Fused score history',
      label: 'fused score',
      color: '#0b5cad',
      range: [0, 1],
      threshold: { value: ALARM_THRESHOLD, label: `alarm threshold` },
      x_range: time_window,
    });
    fused_box.append(fused_chart.root);
  }
  fused_chart.update(...points_to_xy(trend.fused));
  byId('fused-empty').hidden = (trend.fused ?? []).length > 0;

  const channels = trend.channels?.length ? trend.channels : Object.keys(trend.sensors ?? {});
  const box = byId('sensor-charts');
  for (const [name, chart] of sensor_charts) {
    if (!channels.includes(name)) {
      chart.destroy();
      sensor_charts.delete(name);
    }
  }
  channels.forEach((name, i) => {
    let chart = sensor_charts.get(name);
    if (!chart) {
      chart = new TimeChart({
        title: `Sensor: ${name}`,
        label: name,
        color: PALETTE[i % PALETTE.length],
        x_range: time_window,
      });
      sensor_charts.set(name, chart);
      box.append(chart.root);
    }
    chart.update(...points_to_xy(trend.sensors?.[name]));
  });
  byId('sensors-empty').hidden = channels.length > 0;
}

function decision_text(d: boolean | number | null | undefined): string {
  if (d === null || d === undefined) return '—';
  return d === true || d === 1 ? 'fault' : 'normal';
}

function inspection_row(ins: Inspection): HTMLElement {
  const mods = el(
    'ul',
    { class: 'modality-results' },
    ...(ins.modalities ?? []).map((m) =>
      el(
        'li',
        { class: `mod-${m.status}` },
        el('strong', {}, m.modality),
        ` ${m.status}`,
        m.status === 'ok' || m.score !== null ? ` · score ${fmt_score(m.score)} · ${decision_text(m.decision)}` : '',
        m.message ? el('span', { class: 'muted small' }, ` — ${m.message}`) : null,
        ...(m.evidence ?? []).map((url, i) =>
          thumbnail(url, `${m.modality} evidence ${i + 1}, inspection ${ins.id}`),
        ),
      ),
    ),
  );
  const tr = el(
    'tr',
    { class: ins.alarm ? 'alarm-row' : '' },
    el('td', {}, el('time', { datetime: ins.started }, fmt_time(ins.started))),
    el('td', {}, ins.point_id || '—'),
    el('td', { class: 'num' }, fmt_score(ins.fused_score)),
    el('td', {}, ins.alarm ? el('span', { class: 'pill status-alarm' }, 'Alarm') : 'No'),
    el('td', {}, ins.fusion_rule || '—'),
    el('td', {}, mods),
  );
  tr.dataset.sig = JSON.stringify(ins);
  return tr;
}

export function render_inspections(list: Inspection[]): void {
  const box = byId('inspections');
  if (!list.length) {
    set_content(box, 'empty', el('p', { class: 'empty' }, 'No inspections recorded for this device yet.'));
    return;
  }
  let tbody = box.querySelector('tbody');
  if (!tbody) {
    delete box.dataset.sig;
    tbody = el('tbody');
    box.replaceChildren(
      el(
        'table',
        { class: 'inspections' },
        el('caption', { class: 'visually-hidden' }, 'Recent inspections'),
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ...['Started', 'Point', 'Fused', 'Alarm', 'Rule', 'Modalities'].map((h) => el('th', { scope: 'col' }, h)),
          ),
        ),
        tbody,
      ),
    );
  }
  reconcile(
    tbody,
    list,
    (i) => String(i.id),
    inspection_row,
    (node, i) => {
      if (node.dataset.sig === JSON.stringify(i)) return;
      const fresh = inspection_row(i);
      node.className = fresh.className;
      node.dataset.sig = fresh.dataset.sig;
      node.replaceChildren(...Array.from(fresh.childNodes));
    },
  );
}
