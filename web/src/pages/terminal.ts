// The browser terminal: xterm.js bridged to the server's terminal WebSocket
// (docs/CONSOLE-API.md "Terminal WebSocket"). Opened in its own tab from the
// instances page's Connect panel.

import type { PageCtx } from '../app';
import { h, button, notice, replace } from '../dom';
import { newTerminal } from '../term';
import { browserStorage, takeIntent } from '../intent';

const CLOSE_REASONS: Record<number, string> = {
  1000: 'The session ended.',
  1001: 'The server is going away.',
  1006: 'The connection dropped (network or server failure).',
  1011: 'The server hit an error.',
  4401: 'Your console session ended: sign in again.',
  4403: 'Access denied.',
  4404: 'The instance is unknown or its agent is offline.',
  4500: 'The server could not run the session.',
};

export function terminalPage(ctx: PageCtx): void {
  const instanceId = ctx.query.get('instanceId') ?? '';
  const osUser = ctx.query.get('osUser') ?? '';
  const port = ctx.query.get('port') ?? '';
  if (!/^i-[0-9a-f]{8,17}$/.test(instanceId) || !osUser || (port !== '' && !/^\d{1,5}$/.test(port))) {
    ctx.main.append(h('h1', null, 'Terminal'), notice('error', 'This page needs ?instanceId=i-…&osUser=NAME. Open it from the instances page’s Connect button.'));
    return;
  }
  document.title = `${osUser}@${instanceId} · kaginashi`;
  const status = h('span', { class: 'term-status', role: 'status', 'aria-live': 'polite' }, 'Starting…');
  const banner = h('div', { class: 'term-banner' });
  const box = h('div', { class: 'term-box', 'aria-label': `Terminal: ${osUser} on ${instanceId}` });
  const reconnect = button('Reconnect', () => connect(), { class: 'small', hidden: true });
  const copy = button('Copy', () => void copySelection(), { class: 'small', title: 'Copy the selection (Ctrl+Shift+C)' });
  const paste = button('Paste', () => void pasteClipboard(), { class: 'small', title: 'Paste (Ctrl+Shift+V)' });
  ctx.main.append(
    h(
      'header',
      { class: 'term-bar' },
      h('h1', { class: 'term-title' }, h('code', null, `${osUser}@${instanceId}`)),
      status,
      h('div', { class: 'term-actions' }, copy, paste, reconnect, h('a', { href: '/console/instances', class: 'small' }, 'Instances')),
    ),
    banner,
    box,
  );

  const { term, fit } = newTerminal();
  term.open(box);
  fit.fit();
  const enc = new TextEncoder();
  let ws: WebSocket | null = null;
  let ended = false;

  const setStatus = (s: string, kind: 'ok' | 'busy' | 'bad' = 'busy'): void => {
    status.textContent = s;
    status.className = `term-status term-status-${kind}`;
  };

  const send = (data: Uint8Array<ArrayBuffer> | string): void => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(data);
  };

  term.onData((d) => send(enc.encode(d)));
  // Some mouse reports are raw bytes, not UTF-8 text.
  term.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff)));
  term.onResize(({ cols, rows }) => send(JSON.stringify({ type: 'resize', cols, rows })));
  term.attachCustomKeyEventHandler((ev) => {
    if (ev.type === 'keydown' && ev.ctrlKey && ev.shiftKey && (ev.key === 'C' || ev.key === 'c')) {
      void copySelection();
      return false;
    }
    if (ev.type === 'keydown' && ev.ctrlKey && ev.shiftKey && (ev.key === 'V' || ev.key === 'v')) {
      void pasteClipboard();
      return false;
    }
    return true;
  });

  async function copySelection(): Promise<void> {
    const sel = term.getSelection();
    if (!sel) {
      setStatus('Select text to copy it.', ws?.readyState === WebSocket.OPEN ? 'ok' : 'bad');
      return;
    }
    try {
      await navigator.clipboard.writeText(sel);
    } catch {
      setStatus('The browser refused the clipboard; use its own copy (right click).', 'bad');
    }
    term.focus();
  }

  async function pasteClipboard(): Promise<void> {
    try {
      const t = await navigator.clipboard.readText();
      if (t) term.paste(t);
    } catch {
      setStatus('The browser refused to read the clipboard; use Ctrl+V.', 'bad');
    }
    term.focus();
  }

  const ro = new ResizeObserver(() => {
    try {
      fit.fit();
    } catch {
      /* hidden or zero-sized: nothing to fit */
    }
  });
  ro.observe(box);

  function connect(): void {
    replace(banner);
    reconnect.hidden = true;
    ended = false;
    const csrf = ctx.app.api.session?.csrfToken ?? '';
    const q = new URLSearchParams({ instanceId, osUser, cols: String(term.cols), rows: String(term.rows), csrf });
    if (port) q.set('port', port);
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/console/api/terminal?${q}`;
    setStatus('Connecting…');
    const sock = new WebSocket(url);
    ws = sock;
    sock.binaryType = 'arraybuffer';
    let errorShown = false;
    let errorMessage = '';
    sock.onopen = () => setStatus('Authorizing…');
    sock.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) {
        if (status.textContent !== 'Connected') setStatus('Connected', 'ok');
        term.write(new Uint8Array(ev.data));
        return;
      }
      let m: any;
      try {
        m = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      switch (m?.type) {
        case 'status':
          setStatus(String(m.message ?? ''));
          break;
        case 'error':
          errorShown = true;
          // Written into the terminal below: no control characters, so a
          // message quoting the host cannot send escape sequences.
          errorMessage = String(m.message ?? '').replace(/[\x00-\x1f\x7f-\x9f]/g, ' ');
          showError(String(m.code ?? 'Error'), String(m.message ?? ''));
          break;
        case 'exit':
          ended = true;
          setStatus(`Session ended (exit status ${m.status}).`, m.status === 0 ? 'ok' : 'bad');
          term.write(`\r\n\x1b[2m[session ended, exit status ${m.status}]\x1b[0m\r\n`);
          break;
      }
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      reconnect.hidden = false;
      if (ended && ev.code === 1000) return;
      const why = CLOSE_REASONS[ev.code] ?? `The connection closed (code ${ev.code}).`;
      setStatus(why, ev.code === 1000 ? 'ok' : 'bad');
      if (!errorShown && ev.code !== 1000) {
        showError(ev.code === 4403 ? 'AccessDenied' : ev.code === 4404 ? 'InstanceOffline' : ev.code === 4401 ? 'NotSignedIn' : `Closed ${ev.code}`, ev.reason || why);
      }
      // The server's own message says what happened ("The connection to
      // the host was lost."); the close code's text only says how it ended.
      // The close reason is cut to 123 bytes by the protocol: the banner
      // has the whole message.
      if (ev.code !== 1000) term.write(`\r\n\x1b[31m[disconnected: ${errorMessage || why}]\x1b[0m\r\n`);
    };
    term.focus();
  }

  function showError(code: string, message: string): void {
    const title = code === 'NotSignedIn' ? 'Signed out' : code === 'AccessDenied' ? 'Access denied' : code === 'InstanceOffline' ? 'Instance offline' : code === 'HostKeyMismatch' ? 'Host key mismatch' : code;
    const help: Record<string, string> = {
      AccessDenied: 'Your policies do not allow this connection. An administrator can check it in the policy simulator.',
      InstanceOffline: 'The host’s agent is not connected to the server.',
      HostKeyMismatch: 'The host presented a key that is not the one in the inventory: the connection was stopped to protect you.',
      RecordingFailed: 'Sessions are recorded; the recording could not be written, so the session was ended.',
      HostKeyUnknown: 'The host’s agent reported no SSH host key, so the server cannot verify the host. Run kaginashi-agent with --sshd-config naming the sshd_config whose host keys it should report.',
      TargetRefused: 'The host’s agent does not allow this port: on the host, kaginashi-agent run --allow-port PORT.',
      AuthenticationFailed: 'sshd refused the key: the OS user may not exist, or sshd does not ask kaginashi-agent for keys (kaginashi-agent doctor on the host).',
      InstanceNotFound: 'No instance has this ID.',
      NotSignedIn: 'Your console session ended.',
    };
    replace(
      banner,
      notice(
        'error',
        h('strong', null, title + ': '),
        h('span', { class: 'term-error-message' }, message),
        help[code] ? h('p', null, help[code]) : null,
        code === 'NotSignedIn' ? h('p', null, h('a', { href: '/console/signin?next=' + encodeURIComponent(location.pathname + location.search) }, 'Sign in again')) : null,
      ),
    );
    setStatus(title, 'bad');
  }

  // Connect at once only when this console's Connect button opened the
  // tab; a link from anywhere else asks first (intent.ts).
  const store = browserStorage();
  if (store && takeIntent(store, ctx.query.get('intent'), { instanceId, osUser, port })) {
    connect();
  } else {
    setStatus('Not connected', 'bad');
    const go = button(
      'Connect',
      () => {
        go.disabled = true;
        connect();
      },
      { class: 'primary' },
    );
    replace(
      banner,
      notice(
        'warning',
        h('strong', null, 'Connect to this host? '),
        'This terminal was opened by a link, not by the console’s Connect button. Connecting pushes a key as you and opens an SSH session as ',
        h('code', null, osUser),
        ' on ',
        h('code', null, instanceId),
        port ? [' (port ', h('code', null, port), ')'] : null,
        '. Connect only if you meant to.',
        h('p', null, go),
      ),
    );
  }
  ctx.onLeave(() => {
    ro.disconnect();
    ws?.close(1000);
    term.dispose();
  });
}
