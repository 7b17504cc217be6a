// Alarm statistics: counts by alarm type (labelled bars in HTML, readable without the chart)
// and alarms per day (uPlot bar chart plus a table for screen readers).
import type { AlarmStats } from './api';
import { TimeChart } from './charts';
import { byId, el, epoch_s, set_content } from './dom';

let day_chart: TimeChart | null = null;

/**
 * One entry per UTC day of the period ending today (zeros where the server reported none), plus
 * any reported day outside it, so the bars sit on a readable calendar axis.
 */
function fill_days(by_day: { day: string; count: number }[], period: number): { day: string; count: number }[] {
  const counts = new Map(by_day.map((d) => [d.day, d.count]));
  const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
  for (let i = period - 1; i >= 0; i--) {
    const day = new Date(today - i * 86400_000).toISOString().slice(0, 10);
    if (!counts.has(day)) counts.set(day, 0);
  }
  return Array.from(counts, ([day, count]) => ({ day, count })).sort((a, b) => a.day.localeCompare(b.day));
}

export function render_stats(stats: AlarmStats, period: number): void {
  const by_type = Object.entries(stats.by_type ?? {}).sort((a, b) => b[1] - a[1]);
  const total = by_type.reduce((s, [, n]) => s + n, 0);
  const max = Math.max(1, ...by_type.map(([, n]) => n));
  set_content(
    byId('stats-type'),
    JSON.stringify(by_type),
    by_type.length
      ? el(
          'ul',
          { class: 'bars', 'aria-label': `Alarms by type, ${total} in total` },
          ...by_type.map(([type, n]) =>
            el(
              'li',
              {},
              el('span', { class: 'bar-label' }, type),
              el(
                'span',
                { class: 'bar-track', 'aria-hidden': 'true' },
                el('span', { class: 'bar-fill', style: `width:${(100 * n) / max}%` }),
              ),
              el('span', { class: 'bar-value' }, String(n)),
            ),
          ),
        )
      : el('p', { class: 'empty' }, 'No alarms in this period.'),
  );

  const days = fill_days(stats.by_day ?? [], period);
  const box = byId('stats-day');
  if (!day_chart) {
    day_chart = new TimeChart({ title: 'Alarms per day', label: 'alarms', color: '#8a4b00', bars: true, height: 160 });
    box.append(day_chart.root);
  }
  // Days are UTC calendar days; place each bar at noon so it sits in the middle of the day.
  day_chart.update(
    days.map((d) => epoch_s(`${d.day}T12:00:00Z`)),
    days.map((d) => d.count),
  );
  set_content(
    byId('stats-day-table'),
    JSON.stringify(days),
    el(
      'table',
      { class: 'visually-hidden' },
      el('caption', {}, 'Alarms per day'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Day'), el('th', { scope: 'col' }, 'Alarms'))),
      el('tbody', {}, ...days.map((d) => el('tr', {}, el('td', {}, d.day), el('td', {}, String(d.count))))),
    ),
  );
}
