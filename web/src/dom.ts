// Small DOM helpers: element builder, keyed list reconciliation (keeps focus across polls),
// formatting of times and scores, screen-reader announcements, evidence image loading.
import { api_key } from './api';

type Attrs = Record<string, string | number | boolean | undefined | null | EventListener>;
type Child = Node | string | null | undefined | false;

/** Builds an element: attributes starting with "on" become listeners, `false`/null are skipped. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = String(v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`dashboard markup lacks #${id}`);
  return node as T;
}

/**
 * Makes `container`'s children match `items` in order, reusing the child whose data-key equals
 * the item's key (so a focused button inside stays focused across refreshes). `render` builds a
 * new child; `update` refreshes an existing one in place.
 */
export function reconcile<T>(
  container: HTMLElement,
  items: T[],
  key: (item: T) => string,
  render: (item: T) => HTMLElement,
  update: (node: HTMLElement, item: T) => void,
): void {
  const old = new Map<string, HTMLElement>();
  for (const child of Array.from(container.children) as HTMLElement[]) {
    if (child.dataset.key !== undefined) old.set(child.dataset.key, child);
    else child.remove();
  }
  let cursor: Element | null = container.firstElementChild;
  for (const item of items) {
    const k = key(item);
    let node = old.get(k);
    if (node) {
      old.delete(k);
      update(node, item);
    } else {
      node = render(item);
      node.dataset.key = k;
    }
    if (node !== cursor) container.insertBefore(node, cursor);
    else cursor = cursor.nextElementSibling;
  }
  for (const stale of old.values()) stale.remove();
}

/** Replaces children only when the content signature changed, to avoid needless reflows. */
export function set_content(container: HTMLElement, signature: string, ...children: Child[]): void {
  if (container.dataset.sig === signature) return;
  container.dataset.sig = signature;
  container.replaceChildren(...(children.filter(Boolean) as (Node | string)[]));
}

export function fmt_time(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

export function fmt_ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 0) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function fmt_score(v: number | null | undefined): string {
  return v === null || v === undefined || Number.isNaN(v) ? '—' : v.toFixed(2);
}

/** Epoch seconds (uPlot's x unit) from an ISO string; NaN when unparsable. */
export function epoch_s(iso: string): number {
  return new Date(iso).getTime() / 1000;
}

/** Speaks a message to screen readers through the polite live region. */
export function announce(message: string): void {
  const region = byId('announcer');
  region.textContent = '';
  // A fresh text node after a tick makes repeated identical messages be read again.
  setTimeout(() => (region.textContent = message), 30);
}

const blob_urls = new Map<string, Promise<string>>();

/**
 * Points an <img> at an evidence URL. With an API key configured the image is fetched with the
 * Authorization header (an <img> cannot send one) and shown from an object URL.
 */
export function load_image(img: HTMLImageElement, url: string): void {
  const key = api_key();
  if (!key) {
    if (img.getAttribute('src') !== url) img.src = url;
    return;
  }
  let p = blob_urls.get(url);
  if (!p) {
    p = fetch(url, { headers: { Authorization: `Bearer ${key}` } }).then((r) => {
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return r.blob().then((b) => URL.createObjectURL(b));
    });
    p.catch(() => blob_urls.delete(url));
    blob_urls.set(url, p);
  }
  p.then(
    (u) => (img.src = u),
    () => img.classList.add('broken'),
  );
}

/**
 * The URL of an evidence file: paths the server already made URLs ("/evidence/...", absolute
 * URLs) are kept; a bare relative path is taken as relative to the evidence root.
 */
export function evidence_url(path: string): string {
  if (/^(\/|https?:|data:|blob:)/.test(path)) return path;
  return `/evidence/${path.split('/').map(encodeURIComponent).join('/')}`;
}

/** A short last path component for captions ("…/cam/0007.png" → "0007.png"). */
export function basename(path: string): string {
  const parts = path.split('/');
  return parts[parts.length - 1] || path;
}
