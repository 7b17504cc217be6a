// Evidence thumbnails and the full-size viewer (<dialog>: modal, Esc closes, focus returns).
import { basename, byId, el, evidence_url, load_image } from './dom';

/** A thumbnail button that opens `url` full size; `label` describes the image for screen readers. */
export function thumbnail(path: string, label: string): HTMLButtonElement {
  const url = evidence_url(path);
  const img = el('img', { alt: label, loading: 'lazy', decoding: 'async', width: 96, height: 72 });
  img.addEventListener('error', () => img.classList.add('broken'));
  load_image(img, url);
  return el(
    'button',
    {
      type: 'button',
      class: 'thumb',
      'data-url': url,
      title: `${label} — open full size`,
      onclick: () => open_lightbox(url, label),
    },
    img,
  );
}

export function open_lightbox(url: string, caption: string): void {
  const dialog = byId<HTMLDialogElement>('lightbox');
  const img = byId<HTMLImageElement>('lightbox-img');
  img.alt = caption;
  img.removeAttribute('src');
  load_image(img, url);
  byId('lightbox-caption').textContent = `${caption} (${basename(url)})`;
  const link = byId<HTMLAnchorElement>('lightbox-open');
  link.href = url;
  dialog.showModal();
}

export function init_lightbox(): void {
  const dialog = byId<HTMLDialogElement>('lightbox');
  byId('lightbox-close').addEventListener('click', () => dialog.close());
  // A click on the backdrop (the dialog box itself, outside the figure) closes it.
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog) dialog.close();
  });
}
