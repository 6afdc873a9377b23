// The application shell: session, layout, client-side routing.

import { Api, describeError } from './api';
import { h, replace, notice, type Child } from './dom';

export interface PageCtx {
  app: App;
  main: HTMLElement;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Runs when the user leaves the page (close streams and sockets). */
  onLeave(fn: () => void): void;
  /** True once the user has left: late async results must not draw. */
  left(): boolean;
}

export type Page = (ctx: PageCtx) => void | Promise<void>;

interface Route {
  pattern: RegExp;
  keys: string[];
  page: Page;
  title: string;
  /** Full-window pages (the terminal) have no navigation chrome. */
  bare?: boolean;
  public?: boolean;
}

export class App {
  readonly api = new Api();
  private routes: Route[] = [];
  private leaveFns: (() => void)[] = [];
  private hasLeft = { v: false };
  private root: HTMLElement;

  constructor(root: HTMLElement) {
    this.root = root;
    this.api.onSignedOut = () => {
      const here = location.pathname + location.search;
      if (!here.startsWith('/console/signin')) this.navigate('/console/signin?next=' + encodeURIComponent(here), true, 'Your session has ended. Sign in again.');
    };
    window.addEventListener('popstate', () => void this.render());
    document.addEventListener('click', (ev) => {
      if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
      const a = (ev.target as Element | null)?.closest?.('a');
      if (!a || a.target || a.hasAttribute('download')) return;
      const url = new URL(a.href, location.href);
      if (url.origin !== location.origin || !url.pathname.startsWith('/console')) return;
      ev.preventDefault();
      this.navigate(url.pathname + url.search + url.hash);
    });
  }

  route(path: string, title: string, page: Page, opts: { bare?: boolean; public?: boolean } = {}): void {
    const keys: string[] = [];
    const re = path.replace(/:(\w+)/g, (_, k: string) => {
      keys.push(k);
      return '([^/]+)';
    });
    this.routes.push({ pattern: new RegExp('^' + re + '/?$'), keys, page, title, ...opts });
  }

  private flash: string | undefined;

  navigate(to: string, replaceState = false, flash?: string): void {
    this.flash = flash;
    if (replaceState) history.replaceState(null, '', to);
    else history.pushState(null, '', to);
    void this.render();
  }

  async start(): Promise<void> {
    try {
      await this.api.loadSession();
    } catch (e) {
      replace(this.root, h('main', { class: 'page' }, notice('error', 'The console cannot reach the server: ', describeError(e))));
      return;
    }
    await this.render();
  }

  async render(): Promise<void> {
    for (const fn of this.leaveFns.splice(0)) {
      try {
        fn();
      } catch {
        /* a page's cleanup must not stop the next page */
      }
    }
    this.hasLeft.v = true;
    const left = { v: false };
    this.hasLeft = left;

    let path = location.pathname;
    if (path === '/' || path === '/console' || path === '/console/') path = '/console/instances';
    let route: Route | undefined;
    let params: Record<string, string> = {};
    for (const r of this.routes) {
      const m = r.pattern.exec(path);
      if (m) {
        route = r;
        params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1])]));
        break;
      }
    }
    if (route && !route.public && !this.api.session) {
      const next = location.pathname + location.search;
      history.replaceState(null, '', '/console/signin' + (next.startsWith('/console/signin') || next === '/' ? '' : '?next=' + encodeURIComponent(next)));
      return this.render();
    }
    if (route?.public && this.api.session && path.startsWith('/console/signin')) {
      history.replaceState(null, '', safeNext(new URLSearchParams(location.search).get('next')));
      return this.render();
    }
    const main = h('main', { id: 'main', class: route?.bare ? 'page page-bare' : 'page', tabindex: '-1' });
    document.title = (route ? route.title : 'Not found') + ' · kaginashi';
    if (route?.bare || route?.public) {
      replace(this.root, main);
    } else {
      replace(this.root, h('a', { class: 'skip-link', href: '#main' }, 'Skip to content'), this.header(path), main);
    }
    if (this.flash) {
      main.appendChild(notice('info', this.flash));
      this.flash = undefined;
    }
    if (!route) {
      main.appendChild(h('h1', null, 'Not found'));
      main.appendChild(h('p', null, 'No page at ', h('code', null, location.pathname), '. ', h('a', { href: '/console/instances' }, 'Go to instances')));
      return;
    }
    const ctx: PageCtx = {
      app: this,
      main,
      params,
      query: new URLSearchParams(location.search),
      onLeave: (fn) => this.leaveFns.push(fn),
      left: () => left.v,
    };
    try {
      await route.page(ctx);
    } catch (e) {
      if (!left.v) main.appendChild(notice('error', describeError(e)));
    }
    // Move focus to the new page for keyboard and screen-reader users, unless
    // the page put it somewhere on purpose (a form's first field, the terminal).
    if (!left.v && (document.activeElement === document.body || document.activeElement === null)) main.focus({ preventScroll: true });
  }

  private header(path: string): HTMLElement {
    const s = this.api.session!;
    const link = (href: string, label: string): Child => {
      const current = path === href || path.startsWith(href + '/');
      return h('li', null, h('a', { href, 'aria-current': current ? 'page' : null }, label));
    };
    const who = s.root ? `root (${s.accountId})` : `${s.userName} @ ${s.accountId}`;
    return h(
      'header',
      { class: 'topbar' },
      h('a', { class: 'brand', href: '/console/instances' }, h('span', { class: 'brand-name' }, 'kaginashi'), h('span', { class: 'brand-jp', lang: 'ja' }, '鍵なし')),
      h(
        'nav',
        { 'aria-label': 'Main' },
        h(
          'ul',
          null,
          link('/console/instances', 'Instances'),
          link('/console/iam/users', 'Users'),
          link('/console/iam/groups', 'Groups'),
          link('/console/iam/policies', 'Policies'),
          link('/console/iam/simulator', 'Simulator'),
          link('/console/audit', 'Audit'),
          link('/console/recordings', 'Recordings'),
        ),
      ),
      h(
        'div',
        { class: 'who' },
        h('span', { class: 'who-name', title: s.arn }, who),
        s.mfa ? h('span', { class: 'badge badge-ok', title: 'Signed in with MFA' }, 'MFA') : null,
        h('span', { class: 'badge' }, s.region),
        h(
          'button',
          {
            type: 'button',
            class: 'link-button',
            onclick: async () => {
              try {
                await this.api.signOut();
              } finally {
                this.navigate('/console/signin', true, 'You have signed out.');
              }
            },
          },
          'Sign out',
        ),
      ),
    );
  }
}

/** Only same-site console paths are followed after sign-in (no open redirect). */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/console/') || next.startsWith('//') || next.startsWith('/console/signin')) return '/console/instances';
  return next;
}
