// Typed client for the mmfuse serve routes the dashboard reads (shapes agreed in docs/dashboard.md).
// Every call goes through request(), which turns {"error":{type,message}} bodies into ApiError.

export type DeviceStatus = 'ok' | 'alarm' | 'missing' | 'unknown';

export interface Device {
  id: string;
  name: string;
  area: string;
  location: string;
  status: DeviceStatus;
  last_fused_score: number | null;
  last_inspected: string | null;
  open_alarms: number;
}

export interface Alarm {
  id: number | string;
  type: string;
  device_id: string;
  point_id: string;
  fused_score: number;
  // The agreed shape is a score per modality; a per-modality object {score, status, ...} is accepted too.
  modalities: Record<string, number | { score?: number | null; status?: string } | null>;
  evidence: string[];
  created: string;
  acknowledged: boolean;
  acknowledged_by: string | null;
  acknowledged_at: string | null;
}

export interface Round {
  round_id: string | null;
  status: 'running' | 'finished' | 'none';
  total: number;
  done: number;
  started: string | null;
  finished: string | null;
}

export type Point = [string, number];

export interface Trend {
  device_id: string;
  channels: string[];
  sensors: Record<string, Point[]>;
  fused: Point[];
}

export interface ModalityResult {
  modality: string;
  status: string;
  score: number | null;
  decision: boolean | number | null;
  message: string;
  evidence: string[];
}

export interface Inspection {
  id: number | string;
  round_id: string | null;
  device_id: string;
  point_id: string;
  started: string;
  finished: string;
  fused_score: number | null;
  alarm: boolean;
  fusion_rule: string;
  modalities: ModalityResult[];
}

export interface AlarmStats {
  by_type: Record<string, number>;
  by_day: { day: string; count: number }[];
}

export interface Info {
  version: string;
  models: unknown[];
  limits: Record<string, number>;
  features: { plant: boolean; index: boolean; auth: boolean; generation?: boolean };
}

export interface ModelEntry {
  id: string;
  capabilities?: string[];
  modalities?: string[];
  parent?: string | null;
}

export interface SearchResult {
  path: string;
  score: number;
  id?: number | string;
  url?: string;
}

/** An HTTP error from the server (status > 0) or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
  get offline(): boolean {
    return this.status === 0;
  }
}

const KEY_STORAGE = 'mmfuse.apiKey';

export function api_key(): string {
  return localStorage.getItem(KEY_STORAGE) ?? '';
}

export function set_api_key(key: string): void {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

function auth_headers(): Record<string, string> {
  const key = api_key();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...auth_headers() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'offline', `server unreachable (${(e as Error).message})`);
  }
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    // A non-JSON body (proxy error page, truncated reply) is reported below.
  }
  if (!res.ok) {
    const err = (json as { error?: { type?: string; message?: string } } | undefined)?.error;
    throw new ApiError(
      res.status,
      err?.type ?? 'http',
      err?.message ?? `${method} ${path} failed with HTTP ${res.status}`,
    );
  }
  if (json === undefined) throw new ApiError(res.status, 'bad_reply', `${path}: reply is not JSON`);
  return json as T;
}

function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const get_info = () => request<Info>('GET', '/info');

export const get_devices = () =>
  request<{ devices: Device[] }>('GET', '/v1/devices').then((r) => r.devices ?? []);

export const get_round = () => request<Round>('GET', '/v1/rounds/current');

export const get_alarms = (p: { acknowledged?: boolean; device?: string; limit?: number }) =>
  request<{ alarms: Alarm[] }>('GET', `/v1/alarms${query(p)}`).then((r) => r.alarms ?? []);

export const ack_alarm = (id: Alarm['id'], user: string) =>
  request<Alarm>('POST', `/v1/alarms/${encodeURIComponent(String(id))}/ack`, { user });

export const get_stats = (days: number) =>
  request<AlarmStats>('GET', `/v1/stats/alarms${query({ days })}`);

export const get_trend = (device: string, since: string) =>
  request<Trend>('GET', `/v1/devices/${encodeURIComponent(device)}/trend${query({ since })}`);

export const get_inspections = (device: string, limit: number) =>
  request<{ inspections: Inspection[] }>('GET', `/v1/inspections${query({ device, limit })}`).then(
    (r) => r.inspections ?? [],
  );

export const search = (text: string, top_k: number) =>
  request<{ results: SearchResult[] }>('POST', '/v1/search', { text, top_k }).then(
    (r) => r.results ?? [],
  );

export const get_models = () =>
  request<{ data: ModelEntry[] }>('GET', '/v1/models').then((r) => r.data ?? []);

/** An evidence file (or any served file) as a data: URL, sent with the API key when one is set. */
export async function fetch_data_url(url: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { headers: auth_headers(), cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'offline', `server unreachable (${(e as Error).message})`);
  }
  if (!res.ok) throw new ApiError(res.status, 'http', `${url}: HTTP ${res.status}`);
  return blob_data_url(await res.blob());
}

export function blob_data_url(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(new Error('the image could not be read'));
    reader.readAsDataURL(blob);
  });
}

/**
 * POST /v1/chat/completions with stream: true; calls on_text with each piece of the answer as the
 * server-sent events arrive and resolves with the finish reason. Aborting `signal` closes the
 * connection, which cancels the generation on the server.
 */
export async function stream_chat(
  body: Record<string, unknown>,
  on_text: (piece: string) => void,
  signal: AbortSignal,
): Promise<string> {
  let res: Response;
  try {
    res = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...auth_headers() },
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'offline', `server unreachable (${(e as Error).message})`);
  }
  if (!res.ok || !res.body) {
    let message = `chat failed with HTTP ${res.status}`;
    let type = 'http';
    try {
      const err = (JSON.parse(await res.text()) as { error?: { type?: string; message?: string } }).error;
      message = err?.message ?? message;
      type = err?.type ?? type;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(res.status, type, message);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let finish = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith('data: ')) continue; // keep-alive comments
      const data = event.slice(6);
      if (data === '[DONE]') return finish;
      const chunk = JSON.parse(data) as {
        error?: { type?: string; message?: string };
        choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
      };
      if (chunk.error) throw new ApiError(500, chunk.error.type ?? 'internal', chunk.error.message ?? 'failed');
      for (const c of chunk.choices ?? []) {
        if (c.delta?.content) on_text(c.delta.content);
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
  }
  return finish;
}
