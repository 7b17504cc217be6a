// "Ask about an image": pick a device's evidence photo from its recent inspections (or upload
// one), ask a question, and stream the answer of a generative model from /v1/chat/completions.
// Shown only when /info reports generative models. Stop (or leaving) cancels the generation.
import {
  ApiError,
  blob_data_url,
  fetch_data_url,
  get_devices,
  get_inspections,
  get_models,
  stream_chat,
} from './api';
import { announce, basename, byId, el, evidence_url, fmt_time, load_image } from './dom';

const IMAGE_RE = /\.(png|jpe?g|webp|bmp)$/i;

let running: AbortController | null = null;
let picked: { label: string; url: string | null; file: File | null } | null = null;

function set_status(text: string): void {
  byId('chat-status').textContent = text;
}

function show_preview(src: string, label: string): void {
  const img = el('img', { alt: label, width: 160, height: 120 });
  if (src.startsWith('data:') || src.startsWith('blob:')) img.src = src;
  else load_image(img, src);
  byId('chat-preview').replaceChildren(img, el('p', { class: 'muted small' }, label));
}

async function load_models(): Promise<void> {
  const select = byId<HTMLSelectElement>('chat-model');
  const models = (await get_models()).filter((m) => m.capabilities?.includes('generate'));
  select.replaceChildren(...models.map((m) => el('option', { value: m.id }, m.id)));
  if (!models.length) set_status('No generative model is served.');
}

async function load_devices(): Promise<void> {
  const select = byId<HTMLSelectElement>('chat-device');
  try {
    const devices = await get_devices();
    select.replaceChildren(
      el('option', { value: '' }, 'Choose a device…'),
      ...devices.map((d) => el('option', { value: d.id }, d.name ? `${d.name} (${d.id})` : d.id)),
    );
  } catch {
    // No plant: only uploads.
    (select.parentElement as HTMLElement).hidden = true;
  }
}

async function load_evidence(device: string): Promise<void> {
  const list = byId('chat-evidence');
  list.replaceChildren();
  if (!device) return;
  const inspections = await get_inspections(device, 10);
  const photos: { url: string; label: string }[] = [];
  for (const ins of inspections)
    for (const m of ins.modalities ?? [])
      for (const path of m.evidence ?? [])
        if (IMAGE_RE.test(path))
          photos.push({ url: evidence_url(path), label: `${device} · ${m.modality} · ${fmt_time(ins.finished)} · ${basename(path)}` });
  if (!photos.length) {
    list.replaceChildren(el('p', { class: 'empty' }, 'No evidence photos for this device yet.'));
    return;
  }
  list.replaceChildren(
    ...photos.slice(0, 24).map((p) => {
      const img = el('img', { alt: p.label, width: 96, height: 72, loading: 'lazy' });
      load_image(img, p.url);
      return el(
        'button',
        {
          type: 'button',
          class: 'thumb',
          title: `Ask about ${p.label}`,
          onclick: () => {
            picked = { label: p.label, url: p.url, file: null };
            byId<HTMLInputElement>('chat-upload').value = '';
            show_preview(p.url, p.label);
          },
        },
        img,
      );
    }),
  );
}

async function image_data_url(): Promise<string | null> {
  if (!picked) return null;
  if (picked.file) return blob_data_url(picked.file);
  return picked.url ? fetch_data_url(picked.url) : null;
}

async function ask(): Promise<void> {
  const question = byId<HTMLTextAreaElement>('chat-question').value.trim();
  if (!question) {
    set_status('Type a question, for example “Is there visible corrosion?”.');
    byId('chat-question').focus();
    return;
  }
  const answer = byId('chat-answer');
  answer.textContent = '';
  const ask_btn = byId<HTMLButtonElement>('chat-ask');
  const stop_btn = byId<HTMLButtonElement>('chat-stop');
  running = new AbortController();
  ask_btn.disabled = true;
  stop_btn.hidden = false;
  set_status(picked ? `Asking about ${picked.label}…` : 'Asking…');
  try {
    const image = await image_data_url();
    const content: unknown[] = [];
    if (image) content.push({ type: 'image_url', image_url: { url: image } });
    content.push({ type: 'text', text: question });
    const max_tokens = Number(byId<HTMLSelectElement>('chat-max').value) || 256;
    const finish = await stream_chat(
      {
        model: byId<HTMLSelectElement>('chat-model').value || undefined,
        messages: [{ role: 'user', content }],
        max_tokens,
      },
      (piece) => answer.append(piece),
      running.signal,
    );
    set_status(finish === 'length' ? `Answer cut at ${max_tokens} tokens.` : 'Done.');
    announce('The answer is complete.');
  } catch (e) {
    if ((e as Error).name === 'AbortError') set_status('Stopped.');
    else set_status(`Chat failed: ${(e as ApiError).message}`);
  } finally {
    running = null;
    ask_btn.disabled = false;
    stop_btn.hidden = true;
  }
}

/** Wires the panel; `enabled` comes from /info (features.generation). */
export function init_chat(enabled: boolean): void {
  const section = byId('chat-section');
  section.hidden = !enabled;
  if (!enabled || section.dataset.ready) return;
  section.dataset.ready = '1';
  void load_models().catch((e) => set_status(`Models unavailable: ${(e as Error).message}`));
  void load_devices();
  byId<HTMLSelectElement>('chat-device').addEventListener('change', (e) => {
    void load_evidence((e.target as HTMLSelectElement).value).catch((err) =>
      set_status(`Evidence unavailable: ${(err as Error).message}`),
    );
  });
  byId<HTMLInputElement>('chat-upload').addEventListener('change', (e) => {
    const file = (e.target as HTMLInputElement).files?.[0] ?? null;
    if (!file) return;
    picked = { label: file.name, url: null, file };
    show_preview(URL.createObjectURL(file), file.name);
  });
  byId<HTMLFormElement>('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void ask();
  });
  byId('chat-stop').addEventListener('click', () => running?.abort());
}
