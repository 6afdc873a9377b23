// Recordings: the list (by user, instance, time) and a player that plays
// the asciicast v2 file into an xterm, with play/pause, speed and seek.

import type { PageCtx } from '../app';
import { h, field, notice, replace, table, formatTime, button } from '../dom';
import { describeError, type Recording } from '../api';
import { pageHead, crumbs } from '../ui';
import { parseCast, type Cast } from '../asciicast';
import { newTerminal } from '../term';

export function recordingsPage(ctx: PageCtx): void {
  const api = ctx.app.api;
  const q = ctx.query;
  const user = h('input', { name: 'user', autocomplete: 'off', value: q.get('user') ?? '' });
  const instance = h('input', { name: 'instanceId', autocomplete: 'off', placeholder: 'i-…', value: q.get('instanceId') ?? '' });
  const from = h('input', { name: 'from', type: 'datetime-local', step: 1, value: q.get('from') ?? '' });
  const to = h('input', { name: 'to', type: 'datetime-local', step: 1, value: q.get('to') ?? '' });
  const results = h('div');
  const form = h('form', { class: 'toolbar', role: 'search' }, field('User', user), field('Instance', instance), field('From (UTC)', from), field('To (UTC)', to), h('button', { type: 'submit', class: 'primary' }, 'Search'));
  const iso = (v: string): string => (v ? new Date(v + (v.length === 16 ? ':00Z' : 'Z')).toISOString() : '');
  const load = async (): Promise<void> => {
    try {
      const r = await api.recordings({ user: user.value.trim(), instanceId: instance.value.trim(), from: iso(from.value), to: iso(to.value) });
      if (ctx.left()) return;
      const recs = (r.recordings ?? []).slice().sort((a, b) => (b.startTime ?? '').localeCompare(a.startTime ?? ''));
      replace(
        results,
        table<Recording>(
          'Session recordings',
          [
            { header: 'Started (UTC)', cell: (x) => h('a', { href: `/console/recordings/${encodeURIComponent(x.id)}` }, formatTime(x.startTime)) },
            { header: 'User', cell: (x) => x.userName },
            { header: 'Instance', cell: (x) => h('code', null, x.instanceId) },
            { header: 'OS user', cell: (x) => h('code', null, x.osUser) },
            { header: 'Duration', cell: (x) => (x.durationSeconds !== undefined ? `${Math.round(x.durationSeconds)} s` : x.endTime ? '' : 'in progress') },
            { header: 'Size', cell: (x) => (x.bytes !== undefined ? `${(x.bytes / 1024).toFixed(1)} KiB` : '—') },
          ],
          recs,
          { empty: 'No recordings match. Every browser terminal session is recorded.', rowAttrs: (x) => ({ 'data-recording-id': x.id }) },
        ),
      );
    } catch (e) {
      replace(results, notice('error', describeError(e)));
    }
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void load();
  });
  ctx.main.append(pageHead('Recordings'), h('p', { class: 'muted' }, 'Browser terminal sessions, recorded as asciicast v2 in the server’s data directory.'), form, results);
  void load();
}

export async function playerPage(ctx: PageCtx): Promise<void> {
  const id = ctx.params.id;
  ctx.main.append(crumbs(['Recordings', '/console/recordings'], [id, null]), pageHead(h('span', null, 'Recording ', h('code', null, id))));
  let cast: Cast;
  try {
    cast = parseCast(await ctx.app.api.recording(id));
  } catch (e) {
    ctx.main.append(notice('error', describeError(e)));
    return;
  }
  if (ctx.left()) return;
  const { term } = newTerminal({ cols: cast.width, rows: cast.height, cursorBlink: false, disableStdin: true });
  const box = h('div', { class: 'player-box', 'aria-label': 'Recorded terminal' });
  const playBtn = button('Play', () => toggle(), { class: 'primary', 'aria-pressed': 'false' });
  const speed = h('select', { name: 'speed' }, ['0.5', '1', '2', '4', '8'].map((s) => h('option', { value: s, selected: s === '1' }, `${s}×`)));
  const seek = h('input', { type: 'range', min: 0, max: Math.max(cast.duration, 0.001), step: 0.1, value: 0, 'aria-label': 'Position' });
  const clock = h('span', { class: 'player-clock', 'aria-live': 'off' }, fmt(0) + ' / ' + fmt(cast.duration));
  const state = h('span', { class: 'player-state', role: 'status' }, 'Paused');
  ctx.main.append(
    h('dl', { class: 'facts' }, h('dt', null, 'Started'), h('dd', null, formatTime(cast.timestamp)), h('dt', null, 'Size'), h('dd', null, `${cast.width}×${cast.height}`), h('dt', null, 'Length'), h('dd', null, fmt(cast.duration))),
    h('div', { class: 'player-controls' }, playBtn, field('Speed', speed), h('div', { class: 'field seek' }, seek), clock, state),
    box,
  );
  term.open(box);

  // Virtual clock: position (s) advances at `speed` while playing.
  let pos = 0;
  let next = 0; // index of the next event to write
  let playing = false;
  let lastTick = 0;
  let raf = 0;

  const writeUntil = (t: number): void => {
    let chunk = '';
    while (next < cast.events.length && cast.events[next][0] <= t) {
      const [, code, data] = cast.events[next++];
      if (code === 'o') {
        chunk += data;
        continue;
      }
      // A resize: what came before it is drawn at the old size.
      if (chunk) term.write(chunk);
      chunk = '';
      const [cols, rows] = data.split('x').map(Number);
      if (cols > 0 && rows > 0) term.resize(Math.min(cols, 500), Math.min(rows, 200));
    }
    if (chunk) term.write(chunk);
  };
  const tick = (now: number): void => {
    if (!playing) return;
    pos = Math.min(cast.duration, pos + ((now - lastTick) / 1000) * Number(speed.value));
    lastTick = now;
    writeUntil(pos);
    seek.value = String(pos);
    clock.textContent = fmt(pos) + ' / ' + fmt(cast.duration);
    if (next >= cast.events.length) {
      setPlaying(false);
      state.textContent = 'Finished';
      return;
    }
    raf = requestAnimationFrame(tick);
  };
  const setPlaying = (on: boolean): void => {
    playing = on;
    playBtn.textContent = on ? 'Pause' : 'Play';
    playBtn.setAttribute('aria-pressed', String(on));
    state.textContent = on ? 'Playing' : 'Paused';
    cancelAnimationFrame(raf);
    if (on) {
      lastTick = performance.now();
      raf = requestAnimationFrame(tick);
    }
  };
  function toggle(): void {
    if (!playing && next >= cast.events.length) {
      // Replay from the start.
      term.reset();
      term.resize(cast.width, cast.height);
      pos = 0;
      next = 0;
    }
    setPlaying(!playing);
  }
  seek.addEventListener('input', () => {
    const t = Number(seek.value);
    if (t < pos) {
      term.reset();
      term.resize(cast.width, cast.height);
      next = 0;
    }
    pos = t;
    writeUntil(pos);
    clock.textContent = fmt(pos) + ' / ' + fmt(cast.duration);
  });
  box.addEventListener('keydown', (ev) => {
    if (ev.key === ' ') {
      toggle();
      ev.preventDefault();
    }
  });
  ctx.onLeave(() => {
    cancelAnimationFrame(raf);
    term.dispose();
  });
  setPlaying(true);
}

function fmt(s: number): string {
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return `${m}:${String(sec).padStart(2, '0')}`;
}
