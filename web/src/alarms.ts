// Alarm list with evidence thumbnails and the Acknowledge action. The operator's name is asked
// once (a <dialog>) and remembered in localStorage; acknowledging POSTs /v1/alarms/{id}/ack.
import { ack_alarm, ApiError, type Alarm, type Device } from './api';
import { announce, byId, el, fmt_ago, fmt_score, fmt_time, reconcile } from './dom';
import { thumbnail } from './lightbox';
import { device_href } from './overview';

const USER_STORAGE = 'mmfuse.user';

export function current_user(): string {
  return localStorage.getItem(USER_STORAGE) ?? '';
}

function show_user(): void {
  const user = current_user();
  byId('user-name').textContent = user || 'not set';
}

/** Opens the name dialog; resolves with the saved name, or '' when cancelled. */
export function ask_user(): Promise<string> {
  const dialog = byId<HTMLDialogElement>('user-dialog');
  const input = byId<HTMLInputElement>('user-input');
  input.value = current_user();
  dialog.returnValue = '';
  dialog.showModal();
  input.focus();
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        const name = input.value.trim();
        if (dialog.returnValue === 'save' && name) {
          localStorage.setItem(USER_STORAGE, name);
          show_user();
          resolve(name);
        } else {
          resolve('');
        }
      },
      { once: true },
    );
  });
}

export function init_user(): void {
  show_user();
  byId('user-btn').addEventListener('click', () => void ask_user());
}

/** Called after a successful acknowledgement so the panels can refresh at once. */
let on_changed: () => void = () => {};
export function set_alarm_changed_handler(fn: () => void): void {
  on_changed = fn;
}

async function acknowledge(alarm: Alarm, button: HTMLButtonElement, status: HTMLElement) {
  let user = current_user();
  if (!user) user = await ask_user();
  if (!user) {
    button.focus();
    return;
  }
  button.disabled = true;
  button.textContent = 'Acknowledging…';
  status.textContent = '';
  try {
    const updated = await ack_alarm(alarm.id, user);
    const item = button.closest<HTMLElement>('li.alarm');
    if (item) fill_alarm(item, updated, device_names);
    announce(`Alarm ${alarm.id} acknowledged by ${updated.acknowledged_by ?? user}.`);
    on_changed();
  } catch (e) {
    const err = e as ApiError;
    button.disabled = false;
    button.textContent = 'Acknowledge';
    status.textContent = `Could not acknowledge: ${err.message}`;
    announce(`Could not acknowledge alarm ${alarm.id}: ${err.message}`);
  }
}

let device_names = new Map<string, Device>();

function device_label(id: string): string {
  const d = device_names.get(id);
  return d && d.name && d.name !== id ? `${d.name} (${id})` : id;
}

/** Rebuilds one alarm item; its Ack button is kept when the alarm is still open. */
function fill_alarm(li: HTMLElement, a: Alarm, names: Map<string, Device>): void {
  device_names = names;
  const sig = JSON.stringify(a);
  if (li.dataset.sig === sig) return;
  li.dataset.sig = sig;
  li.className = `alarm ${a.acknowledged ? 'acked' : 'open'}`;
  li.dataset.alarmId = String(a.id);

  const modalities = Object.entries(a.modalities ?? {})
    .map(([m, v]) => [m, typeof v === 'number' ? v : (v?.score ?? null)] as [string, number | null])
    .sort((x, y) => (y[1] ?? -1) - (x[1] ?? -1))
    .map(([m, s]) => el('li', { class: s !== null && s >= 0.5 ? 'hot' : '' }, `${m} ${fmt_score(s)}`));
  const evidence = (a.evidence ?? []).map((url, i) =>
    thumbnail(url, `Evidence ${i + 1} of alarm ${a.id} (${a.type}, ${device_label(a.device_id)})`),
  );

  // Keep the existing action element (and its focus) while the alarm stays open.
  let action = li.querySelector<HTMLElement>('.alarm-action');
  const status = li.querySelector<HTMLElement>('.alarm-error') ?? el('p', { class: 'alarm-error', role: 'alert' });
  if (a.acknowledged) {
    action = el(
      'p',
      { class: 'alarm-action acked-by' },
      `Acknowledged by ${a.acknowledged_by ?? 'unknown'}`,
      a.acknowledged_at ? ` · ${fmt_time(a.acknowledged_at)}` : '',
    );
  } else if (!action || action.tagName !== 'BUTTON') {
    const button = el('button', { type: 'button', class: 'alarm-action ack' }, 'Acknowledge');
    button.setAttribute('aria-label', `Acknowledge alarm ${a.id} (${a.type}, ${device_label(a.device_id)})`);
    button.addEventListener('click', () => void acknowledge(a, button, status));
    action = button;
  }

  const parts: (Node | null)[] = [
    el(
      'div',
      { class: 'alarm-head' },
      el('span', { class: `pill type` }, a.type),
      el('a', { href: device_href(a.device_id), class: 'alarm-device' }, device_label(a.device_id)),
      a.point_id ? el('span', { class: 'muted' }, ` · point ${a.point_id}`) : null,
      el('span', { class: 'alarm-score', title: 'Fused score' }, `fused ${fmt_score(a.fused_score)}`),
    ),
    el(
      'p',
      { class: 'muted small' },
      el('time', { datetime: a.created, title: fmt_time(a.created) }, fmt_ago(a.created)),
      ` · alarm #${a.id}`,
    ),
    modalities.length ? el('ul', { class: 'modalities', 'aria-label': 'Modality scores' }, ...modalities) : null,
    evidence.length
      ? el('div', { class: 'evidence', role: 'group', 'aria-label': 'Evidence images' }, ...evidence)
      : el('p', { class: 'muted small' }, 'No evidence images.'),
    action,
    status,
  ];
  li.replaceChildren(...parts.filter((p): p is Node => p !== null));
}

/** Renders `alarms` into the list `container`, with `empty` shown when there are none. */
export function render_alarms(
  container: HTMLElement,
  empty: HTMLElement,
  alarms: Alarm[],
  names: Map<string, Device>,
  empty_text: string,
): void {
  device_names = names;
  empty.hidden = alarms.length > 0;
  empty.textContent = empty_text;
  reconcile(
    container,
    alarms,
    (a) => String(a.id),
    (a) => {
      const li = el('li', { class: 'alarm' });
      fill_alarm(li, a, names);
      return li;
    },
    (li, a) => fill_alarm(li, a, names),
  );
}
