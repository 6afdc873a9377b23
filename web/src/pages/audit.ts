// The audit page: CloudTrail LookupEvents through /console/api/aws, filters
// by user, event name and time range, and the raw event of a row.

import type { PageCtx } from '../app';
import { h, field, notice, replace, table, formatTime, button } from '../dom';
import { describeError } from '../api';
import { listOf, str } from '../aws';
import { pageHead } from '../ui';

interface Row {
  id: string;
  name: string;
  time: number;
  user: string;
  source: string;
  raw: string;
  ev: any;
}

export function auditPage(ctx: PageCtx): void {
  const api = ctx.app.api;
  const q = ctx.query;
  const user = h('input', { name: 'user', autocomplete: 'off', value: q.get('user') ?? '' });
  const event = h('input', { name: 'event', autocomplete: 'off', placeholder: 'SendSSHPublicKey', value: q.get('event') ?? '' });
  const from = h('input', { name: 'from', type: 'datetime-local', step: 1, value: q.get('from') ?? '' });
  const to = h('input', { name: 'to', type: 'datetime-local', step: 1, value: q.get('to') ?? '' });
  const out = h('div', { class: 'messages' });
  const results = h('div');
  const detail = h('section', { class: 'card event-detail', 'aria-label': 'Event detail', hidden: true });
  const more = button('Load more', () => void load(false), { hidden: true });
  let rows: Row[] = [];
  let next = '';

  const form = h(
    'form',
    { class: 'toolbar', role: 'search' },
    field('User', user),
    field('Event name', event),
    field('From (UTC)', from),
    field('To (UTC)', to),
    h('button', { type: 'submit', class: 'primary' }, 'Search'),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const u = new URL(location.href);
    for (const [k, el] of [['user', user], ['event', event], ['from', from], ['to', to]] as const) {
      if (el.value) u.searchParams.set(k, el.value);
      else u.searchParams.delete(k);
    }
    history.replaceState(null, '', u.pathname + u.search);
    void load(true);
  });

  const epoch = (v: string): number | undefined => (v ? Date.parse(v + (v.length === 16 ? ':00Z' : 'Z')) / 1000 : undefined);

  async function load(fresh: boolean): Promise<void> {
    replace(out);
    if (fresh) {
      rows = [];
      next = '';
    }
    // LookupEvents takes one attribute: the user if given, and the event
    // name is then matched here.
    const attrs = user.value.trim()
      ? [{ AttributeKey: 'Username', AttributeValue: user.value.trim() }]
      : event.value.trim()
        ? [{ AttributeKey: 'EventName', AttributeValue: event.value.trim() }]
        : [];
    const params: Record<string, unknown> = { MaxResults: 50, LookupAttributes: attrs };
    const st = epoch(from.value);
    const et = epoch(to.value);
    if (st !== undefined && !Number.isNaN(st)) params.StartTime = st;
    if (et !== undefined && !Number.isNaN(et)) params.EndTime = et;
    if (next) params.NextToken = next;
    try {
      const r = await api.aws('cloudtrail', 'LookupEvents', params);
      if (ctx.left()) return;
      next = str(r, 'NextToken');
      for (const e of listOf(r, 'Events')) {
        const raw = str(e, 'CloudTrailEvent');
        let ev: any = {};
        try {
          ev = JSON.parse(raw);
        } catch {
          /* shown raw */
        }
        rows.push({ id: str(e, 'EventId'), name: str(e, 'EventName'), time: Number(str(e, 'EventTime')), user: str(e, 'Username'), source: str(e, 'EventSource'), raw, ev });
      }
      draw();
    } catch (e) {
      out.appendChild(notice('error', describeError(e)));
    }
  }

  function draw(): void {
    const ename = event.value.trim();
    const shown = user.value.trim() && ename ? rows.filter((r) => r.name === ename) : rows;
    replace(
      results,
      table<Row>(
        'Audit events',
        [
          { header: 'Time (UTC)', cell: (r) => formatTime(r.time) },
          { header: 'Event', cell: (r) => h('button', { type: 'button', class: 'link-button', onclick: () => showDetail(r), 'aria-label': `Show event ${r.name} at ${formatTime(r.time)}` }, r.name) },
          { header: 'User', cell: (r) => r.user || '—' },
          { header: 'Source', cell: (r) => r.source },
          { header: 'Source IP', cell: (r) => r.ev?.sourceIPAddress ?? '—' },
          { header: 'Result', cell: (r) => outcome(r.ev) },
          { header: 'Resource', cell: (r) => resourceOf(r.ev) },
        ],
        shown,
        { empty: 'No events match.', rowAttrs: (r) => ({ 'data-event-name': r.name, 'data-event-id': r.id }) },
      ),
    );
    more.hidden = !next;
  }

  function showDetail(r: Row): void {
    detail.hidden = false;
    let pretty = r.raw;
    try {
      pretty = JSON.stringify(JSON.parse(r.raw), null, 2);
    } catch {
      /* raw as stored */
    }
    const close = button('Close', () => {
      detail.hidden = true;
    }, { class: 'small' });
    replace(
      detail,
      h('div', { class: 'card-head' }, h('h2', { tabindex: '-1', id: 'event-detail-title' }, `${r.name} · ${formatTime(r.time)}`), close),
      h('dl', { class: 'facts' }, h('dt', null, 'Event ID'), h('dd', null, h('code', null, r.id)), h('dt', null, 'User'), h('dd', null, r.user || '—'), h('dt', null, 'Result'), h('dd', null, outcome(r.ev))),
      h('pre', { class: 'code raw-event', tabindex: '0', 'aria-label': 'Raw event' }, pretty),
    );
    (detail.querySelector('#event-detail-title') as HTMLElement).focus();
  }

  ctx.main.append(pageHead('Audit'), h('p', { class: 'muted' }, 'Every decision, as CloudTrail events (LookupEvents).'), form, out, h('div', { class: 'audit-layout' }, h('div', null, results, more), detail));
  void load(true);
}

function outcome(ev: any): HTMLElement {
  const code = ev?.errorCode;
  if (code) return h('span', { class: 'decision decision-explicitDeny', title: ev?.errorMessage ?? '' }, code);
  // A write-ahead event whose final version never committed (the server
  // stopped or the disk filled after the change): the change may have
  // happened, its result is unknown.
  if (ev?.additionalEventData?.outcome === 'pending') {
    return h('span', { class: 'decision state-pending', title: 'The call was allowed and may have changed something; its final result was never recorded.' }, 'Pending');
  }
  const login = ev?.responseElements?.ConsoleLogin;
  if (login) return h('span', { class: login === 'Success' ? 'decision decision-allowed' : 'decision decision-explicitDeny' }, login);
  return h('span', { class: 'decision decision-allowed' }, 'Success');
}

function resourceOf(ev: any): string {
  const p = ev?.requestParameters ?? {};
  const parts = [p.instanceId, p.instanceOSUser, p.userName, p.policyArn].filter(Boolean);
  return parts.length ? parts.join(' ') : '—';
}
