// Small DOM helpers: the console builds its pages with these instead of a
// framework. Text is always set as text (never innerHTML), so server data
// cannot inject markup, and no inline style attribute is ever written (the
// server's CSP forbids them).

export type Child = Node | string | number | null | undefined | false | Child[];
export type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
      } else if (k === 'class') {
        el.className = String(v);
      } else if (k === 'value' && 'value' in el) {
        (el as HTMLInputElement).value = String(v);
      } else if (k === 'checked' && 'checked' in el) {
        (el as HTMLInputElement).checked = Boolean(v);
      } else if (k === 'style') {
        throw new Error('inline style attributes are forbidden by the CSP; use a class');
      } else {
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

let idSeq = 0;
/** A unique element id, for label/for and aria-describedby. */
export function uid(prefix = 'k'): string {
  idSeq++;
  return `${prefix}-${idSeq}`;
}

/** A labelled form field: <div class=field><label/>control<small hint/></div>. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLDivElement {
  if (!control.id) control.id = uid('f');
  const wrap = h('div', { class: 'field' }, h('label', { for: control.id }, label), control);
  if (hint) {
    const hid = uid('hint');
    control.setAttribute('aria-describedby', hid);
    wrap.appendChild(h('small', { id: hid, class: 'hint' }, hint));
  }
  return wrap;
}

/** A message box; role=alert for errors so screen readers announce them. */
export function notice(kind: 'error' | 'warning' | 'info' | 'success', ...children: Child[]): HTMLDivElement {
  return h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children);
}

export function button(label: string, onClick: (ev: MouseEvent) => void, attrs: Attrs = {}): HTMLButtonElement {
  const b = h('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', onClick as EventListener);
  return b;
}

/** A table from rows; columns give a header and a cell renderer. */
export interface Column<T> {
  header: string;
  cell: (row: T) => Child;
  class?: string;
}

export function table<T>(caption: string, columns: Column<T>[], rows: T[], opts: { empty?: string; rowAttrs?: (r: T) => Attrs } = {}): HTMLElement {
  const thead = h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.header))));
  const tbody = h('tbody');
  if (rows.length === 0) {
    tbody.appendChild(h('tr', null, h('td', { colspan: columns.length, class: 'empty' }, opts.empty ?? 'Nothing here yet.')));
  }
  for (const r of rows) {
    tbody.appendChild(h('tr', opts.rowAttrs ? opts.rowAttrs(r) : null, columns.map((c) => h('td', { class: c.class }, c.cell(r)))));
  }
  return h('div', { class: 'table-wrap' }, h('table', null, h('caption', { class: 'sr-only' }, caption), thead, tbody));
}

export function formatTime(v: string | number | undefined | null): string {
  if (v === undefined || v === null || v === '') return '—';
  const d = typeof v === 'number' ? new Date(v > 1e12 ? v : v * 1000) : new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function ago(v: string | undefined | null, now = Date.now()): string {
  if (!v) return '—';
  const t = new Date(v).getTime();
  if (Number.isNaN(t)) return String(v);
  const s = Math.round((now - t) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return formatTime(v);
}

/** debounce calls fn after ms of quiet. */
export function debounce<A extends unknown[]>(fn: (...a: A) => void, ms: number): (...a: A) => void {
  let t: number | undefined;
  return (...a: A) => {
    if (t !== undefined) clearTimeout(t);
    t = window.setTimeout(() => fn(...a), ms);
  };
}
