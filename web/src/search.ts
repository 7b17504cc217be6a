// Text → image search over the server's index (POST /v1/search), shown only when /info reports
// an index. Results are a grid of thumbnails with their scores; a click opens the full image.
import { search, type SearchResult } from './api';
import { announce, basename, byId, el } from './dom';
import { thumbnail } from './lightbox';

function result_url(r: SearchResult): string | null {
  if (r.url) return r.url;
  return null;
}

function render_results(query: string, results: SearchResult[]): void {
  const grid = byId('search-results');
  if (!results.length) {
    grid.replaceChildren(el('p', { class: 'empty' }, `No images found for “${query}”.`));
    return;
  }
  grid.replaceChildren(
    ...results.map((r, i) => {
      const url = result_url(r);
      return el(
        'figure',
        { class: 'result' },
        url
          ? thumbnail(url, `Result ${i + 1} for “${query}”: ${basename(r.path)}`)
          : el('div', { class: 'thumb placeholder', title: 'The server does not serve this file' }, 'no preview'),
        el(
          'figcaption',
          {},
          el('span', { class: 'result-name', title: r.path }, basename(r.path)),
          el('span', { class: 'muted small' }, ` score ${r.score.toFixed(3)}`),
        ),
      );
    }),
  );
}

export function init_search(): void {
  const form = byId<HTMLFormElement>('search-form');
  const input = byId<HTMLInputElement>('search-input');
  const status = byId('search-status');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) {
      status.textContent = 'Type what to look for, for example “oil leak”.';
      input.focus();
      return;
    }
    const top_k = Number(byId<HTMLSelectElement>('search-k').value) || 12;
    status.textContent = 'Searching…';
    form.setAttribute('aria-busy', 'true');
    try {
      const results = await search(text, top_k);
      render_results(text, results);
      status.textContent = `${results.length} result${results.length === 1 ? '' : 's'} for “${text}”.`;
      announce(status.textContent);
    } catch (err) {
      status.textContent = `Search failed: ${(err as Error).message}`;
      byId('search-results').replaceChildren();
    } finally {
      form.removeAttribute('aria-busy');
    }
  });
}
