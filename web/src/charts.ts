// uPlot wrappers: a time-series line chart (sensor trends, fused-score history with the alarm
// threshold) and a daily bar chart (alarm statistics). Charts follow their container's width and
// update in place on each poll; each has a text summary for screen readers.
import uPlot from 'uplot';
import { el } from './dom';

const resize = new ResizeObserver((entries) => {
  for (const e of entries) {
    const chart = charts.get(e.target as HTMLElement);
    chart?.fit();
  }
});
const charts = new Map<HTMLElement, TimeChart>();

export interface ChartSpec {
  title: string;
  label: string; // series name in the legend
  color: string;
  height?: number;
  threshold?: { value: number; label: string };
  range?: [number, number]; // fixed y range (fused score is 0..1)
  bars?: boolean; // daily bars instead of a line
  x_range?: () => [number, number]; // fixed time window in epoch seconds (e.g. the chosen range)
}

export class TimeChart {
  readonly root: HTMLElement;
  private plot: uPlot | null = null;
  private readonly box: HTMLElement;
  private readonly summary: HTMLElement;
  private xs: number[] = [];
  private ys: number[] = [];

  constructor(private readonly spec: ChartSpec) {
    this.box = el('div', { class: 'chart-canvas', 'aria-hidden': 'true' });
    this.summary = el('p', { class: 'visually-hidden' });
    this.root = el('figure', { class: 'chart' }, el('figcaption', {}, spec.title), this.box, this.summary);
    charts.set(this.box, this);
    resize.observe(this.box);
  }

  private options(width: number): uPlot.Options {
    const s = this.spec;
    const series: uPlot.Series[] = [
      {},
      {
        label: s.label,
        stroke: s.color,
        width: 2,
        fill: s.bars ? s.color + 'cc' : s.color + '22',
        points: { show: !s.bars, size: 6 },
        paths: s.bars ? uPlot.paths.bars!({ size: [0.6, 48] }) : undefined,
        value: (_u, v) => (v === null || v === undefined ? '—' : s.bars ? String(v) : v.toFixed(3)),
      },
    ];
    if (s.threshold) {
      series.push({
        label: s.threshold.label,
        stroke: '#b3261e',
        dash: [6, 4],
        width: 1.5,
        points: { show: false },
        value: () => s.threshold!.value.toFixed(2),
      });
    }
    return {
      width,
      height: s.height ?? 180,
      series,
      scales: {
        // Bars are daily: pad half a day each side so the first and last bar are whole.
        x: s.bars
          ? { time: true, range: (_u, min, max) => [min - 43200, max + 43200] }
          : s.x_range
            ? { time: true, range: () => s.x_range!() }
            : { time: true },
        y: s.range ? { range: s.range } : s.bars ? { range: (_u, _min, max) => [0, Math.max(1, max)] } : {},
      },
      axes: [
        { stroke: '#3d4451', grid: { stroke: '#e3e6ea' } },
        { stroke: '#3d4451', grid: { stroke: '#e3e6ea' }, size: 52 },
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
  }

  private data(): uPlot.AlignedData {
    const t = this.spec.threshold;
    if (!t) return [this.xs, this.ys];
    // The threshold line spans the whole window: add its ends as x values where the data has none.
    const xs: number[] = [...this.xs];
    const ys: (number | null)[] = [...this.ys];
    const [lo, hi] = this.spec.x_range ? this.spec.x_range() : [NaN, NaN];
    if (xs.length === 0 || lo < xs[0]) {
      xs.unshift(lo);
      ys.unshift(null);
    }
    if (hi > xs[xs.length - 1]) {
      xs.push(hi);
      ys.push(null);
    }
    const keep = xs.map((x) => Number.isFinite(x));
    const f = <T,>(a: T[]) => a.filter((_, i) => keep[i]);
    return [f(xs), f(ys), f(xs).map(() => t.value)] as uPlot.AlignedData;
  }

  /** Sets the points (x in epoch seconds, ascending). */
  update(xs: number[], ys: number[]): void {
    this.xs = xs;
    this.ys = ys;
    const n = ys.length;
    if (n === 0) {
      this.summary.textContent = `${this.spec.title}: no data.`;
    } else {
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of ys) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      const fmt = (v: number) => (this.spec.bars ? String(v) : v.toFixed(3));
      this.summary.textContent =
        `${this.spec.title}: ${n} points, min ${fmt(lo)}, max ${fmt(hi)}, latest ${fmt(ys[n - 1])}.`;
    }
    if (!this.plot) {
      if (!this.box.isConnected) return;
      this.plot = new uPlot(this.options(this.width()), this.data(), this.box);
    } else {
      this.plot.setData(this.data());
    }
  }

  private width(): number {
    return Math.max(240, Math.floor(this.box.getBoundingClientRect().width || 600));
  }

  /** Re-lays the chart to the container's width (called by the resize observer). */
  fit(): void {
    if (!this.plot) {
      if (this.box.isConnected && this.box.getBoundingClientRect().width > 0) this.update(this.xs, this.ys);
      return;
    }
    const w = this.width();
    if (Math.abs(w - this.plot.width) > 2) this.plot.setSize({ width: w, height: this.spec.height ?? 180 });
  }

  destroy(): void {
    resize.unobserve(this.box);
    charts.delete(this.box);
    this.plot?.destroy();
    this.plot = null;
    this.root.remove();
  }
}
