// Shared page pieces: headings, async sections, confirm buttons, tag editor,
// the once-only secret display.

import { describeError } from './api';
import { h, notice, replace, button, field, type Child } from './dom';

export function pageHead(title: Child, ...extra: Child[]): HTMLElement {
  return h('div', { class: 'page-head' }, h('h1', null, title), ...extra);
}

export function crumbs(...items: [string, string | null][]): HTMLElement {
  return h(
    'nav',
    { 'aria-label': 'Breadcrumb', class: 'crumbs' },
    h(
      'ol',
      null,
      items.map(([label, href]) => h('li', null, href ? h('a', { href }, label) : h('span', { 'aria-current': 'page' }, label))),
    ),
  );
}

/**
 * A section whose body is (re)loaded by load(); errors show in place, so
 * one failing call (say, AccessDenied on ListMFADevices) doesn't blank the page.
 */
export function section(
  title: string,
  load: (body: HTMLElement, reload: () => Promise<void>, note: HTMLElement) => Promise<void>,
  actions?: Child,
): { el: HTMLElement; reload: () => Promise<void> } {
  const body = h('div', { class: 'section-body', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  // note outlives reloads: for a message about what a reload just showed.
  const note = h('div', { class: 'section-note', 'aria-live': 'polite' });
  const el = h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', null, title), actions ?? null), body, note);
  const reload = async (): Promise<void> => {
    body.setAttribute('aria-busy', 'true');
    try {
      const fresh = h('div');
      await load(fresh, reload, note);
      replace(body, ...Array.from(fresh.childNodes));
    } catch (e) {
      replace(body, notice('error', describeError(e)));
    } finally {
      body.removeAttribute('aria-busy');
    }
  };
  void reload();
  return { el, reload };
}

/** Runs an action, showing its error (or success message) in `out`. */
export async function act(out: HTMLElement, fn: () => Promise<unknown>, ok?: string): Promise<boolean> {
  replace(out);
  try {
    await fn();
    if (ok) out.appendChild(notice('success', ok));
    return true;
  } catch (e) {
    out.appendChild(notice('error', describeError(e)));
    return false;
  }
}

/** A button that asks for confirmation first. */
export function dangerButton(label: string, question: string, onConfirm: () => void): HTMLButtonElement {
  return button(label, () => {
    if (window.confirm(question)) onConfirm();
  }, { class: 'danger small' });
}

/** Key=Value lines → [key, value] pairs; errors name the line. */
export function parseTags(text: string): [string, string][] {
  const out: [string, string][] = [];
  text.split('\n').forEach((line, i) => {
    const l = line.trim();
    if (!l) return;
    const eq = l.indexOf('=');
    if (eq <= 0) throw new Error(`Tag line ${i + 1}: write KEY=VALUE`);
    out.push([l.slice(0, eq).trim(), l.slice(eq + 1).trim()]);
  });
  return out;
}

/** A secret shown once, with a copy button and a clear warning. */
export function secretOnce(title: string, rows: [string, string][]): HTMLElement {
  return notice(
    'warning',
    h('strong', null, title),
    h('p', null, 'This is the only time the secret is shown. Copy it now and keep it safe.'),
    h(
      'dl',
      { class: 'facts secret' },
      rows.map(([k, v]) => [
        h('dt', null, k),
        h('dd', null, h('code', { class: 'secret-value', 'data-secret': k }, v), ' ', button('Copy', () => void navigator.clipboard?.writeText(v).catch(() => {}), { class: 'small', 'aria-label': `Copy ${k}` })),
      ]),
    ),
  );
}

export function inlineForm(onSubmit: (form: HTMLFormElement) => void | Promise<void>, ...children: Child[]): HTMLFormElement {
  const f = h('form', { class: 'inline-form' }, ...children);
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void onSubmit(f);
  });
  return f;
}

export { field };
