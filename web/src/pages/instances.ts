// Instances: a list like EC2's, live through the SSE watch, and the
// "Connect" panel of the seed article's flow (EC2 Instance Connect tab, user
// name prefilled from the instance's default user, editable).

import { type Instance, describeError } from '../api';
import type { PageCtx } from '../app';
import { h, field, notice, replace, table, ago, formatTime, uid } from '../dom';
import { browserStorage, putIntent } from '../intent';

export function instancesPage(ctx: PageCtx): void {
  let instances: Instance[] = [];
  let selected: string | null = ctx.query.get('selected');
  const search = h('input', { type: 'search', placeholder: 'id, Name, OS, IP, tag…', autocomplete: 'off', value: ctx.query.get('q') ?? '' });
  const state = h('select', null, ['all', 'running', 'stopped', 'pending', 'terminated'].map((s) => h('option', { value: s }, s === 'all' ? 'Any state' : s)));
  const live = h('span', { class: 'live', role: 'status' }, 'connecting…');
  const count = h('p', { class: 'muted count', 'aria-live': 'polite' });
  const listBox = h('div', { class: 'instances-list' });
  const panel = h('section', { class: 'connect-panel', 'aria-label': 'Selected instance' });
  const messages = h('div', { class: 'messages' });

  ctx.main.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Instances'), live),
    h('div', { class: 'toolbar', role: 'search' }, field('Search', search), field('State', state)),
    messages,
    count,
    listBox,
    panel,
  );

  const matches = (i: Instance): boolean => {
    if (state.value !== 'all' && i.state !== state.value) return false;
    const q = search.value.trim().toLowerCase();
    if (!q) return true;
    const hay = [i.instanceId, i.name, i.state, i.osPrettyName, i.osId, i.osVersion, i.defaultUser, i.privateIp, String(i.ipv6 ?? ''), i.agentVersion, i.signingKeyProblem, ...Object.entries(i.tags ?? {}).map(([k, v]) => `${k}=${v}`)]
      .filter(Boolean)
      .join(' ')
      .toLowerCase();
    return q.split(/\s+/).every((w) => hay.includes(w));
  };

  const draw = (): void => {
    const rows = instances.filter(matches);
    count.textContent = `${rows.length} of ${instances.length} instance${instances.length === 1 ? '' : 's'}`;
    const group = uid('sel');
    replace(
      listBox,
      table<Instance>(
        'Instances',
        [
          {
            header: 'Select',
            class: 'col-select',
            cell: (i) =>
              h('input', {
                type: 'radio',
                name: group,
                value: i.instanceId,
                checked: i.instanceId === selected,
                'aria-label': `Select ${i.name ? i.name + ' ' : ''}${i.instanceId}`,
                onchange: () => select(i.instanceId),
              }),
          },
          { header: 'Name', cell: (i) => i.name || h('span', { class: 'muted' }, '—') },
          { header: 'Instance ID', cell: (i) => h('code', null, i.instanceId) },
          {
            header: 'State',
            cell: (i) => [
              h('span', { class: `state state-${i.state}` }, i.state),
              i.connected === false && i.state === 'running' ? h('span', { class: 'muted' }, ' (agent offline)') : null,
              keyProblemBadge(i.signingKeyProblem),
            ],
          },
          { header: 'OS', cell: (i) => i.osPrettyName || [i.osId, i.osVersion].filter(Boolean).join(' ') || '—' },
          { header: 'Default user', cell: (i) => (i.defaultUser ? h('code', null, i.defaultUser) : '—') },
          { header: 'Private IP', cell: (i) => i.privateIp || '—' },
          { header: 'Agent', cell: (i) => i.agentVersion || '—' },
          { header: 'Last seen', cell: (i) => h('time', { datetime: i.lastSeen ?? '', title: formatTime(i.lastSeen) }, ago(i.lastSeen)) },
          { header: 'Tags', cell: (i) => tagChips(i.tags) },
        ],
        rows,
        {
          empty: instances.length ? 'No instance matches the search.' : 'No instance yet. Enroll a host: kaginashi agent-token create prints the commands.',
          rowAttrs: (i) => ({ class: i.instanceId === selected ? 'selected' : '', 'data-instance-id': i.instanceId }),
        },
      ),
    );
    drawPanel();
  };

  const select = (id: string): void => {
    selected = id;
    const u = new URL(location.href);
    u.searchParams.set('selected', id);
    history.replaceState(null, '', u.pathname + u.search);
    draw();
  };

  const drawPanel = (): void => {
    const i = instances.find((x) => x.instanceId === selected);
    if (!i) {
      replace(panel, h('p', { class: 'muted' }, 'Select an instance to connect to it.'));
      return;
    }
    const osUser = h('input', { name: 'osUser', autocomplete: 'off', spellcheck: 'false', value: i.defaultUser || '', required: true });
    // The host's sshd port as its agent read it from sshd's configuration
    // (the agent lets tunnels reach it); 22 when unknown.
    const port = h('input', { name: 'port', type: 'number', min: 1, max: 65535, inputmode: 'numeric', value: String(i.sshPort ?? 22) });
    const tabIds = { eic: uid('tab'), ssh: uid('tab') };
    const eicPanel = h('div', { role: 'tabpanel', id: tabIds.eic + '-panel', 'aria-labelledby': tabIds.eic });
    const sshPanel = h('div', { role: 'tabpanel', id: tabIds.ssh + '-panel', 'aria-labelledby': tabIds.ssh, hidden: true });
    const tab = (id: string, label: string, on: boolean): HTMLButtonElement =>
      h('button', { type: 'button', role: 'tab', id, 'aria-controls': id + '-panel', 'aria-selected': on ? 'true' : 'false', tabindex: on ? '0' : '-1' }, label);
    const tEIC = tab(tabIds.eic, 'EC2 Instance Connect', true);
    const tSSH = tab(tabIds.ssh, 'SSH client', false);
    const show = (which: 'eic' | 'ssh'): void => {
      tEIC.setAttribute('aria-selected', String(which === 'eic'));
      tSSH.setAttribute('aria-selected', String(which === 'ssh'));
      tEIC.tabIndex = which === 'eic' ? 0 : -1;
      tSSH.tabIndex = which === 'ssh' ? 0 : -1;
      eicPanel.hidden = which !== 'eic';
      sshPanel.hidden = which !== 'ssh';
    };
    tEIC.addEventListener('click', () => show('eic'));
    tSSH.addEventListener('click', () => show('ssh'));
    const tablist = h('div', { role: 'tablist', 'aria-label': 'Connection method' }, tEIC, tSSH);
    tablist.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
        const next = document.activeElement === tEIC ? tSSH : tEIC;
        next.focus();
        next.click();
        ev.preventDefault();
      }
    });
    const err = h('div', { 'aria-live': 'polite' });
    const online = i.connected ?? i.state === 'running';
    const form = h(
      'form',
      { class: 'connect-form' },
      field('User name', osUser, i.defaultUser ? `The OS's default user is ${i.defaultUser}${i.defaultUserExists === false ? ' (not present on this host)' : ''}.` : 'The OS user to log in as.'),
      h('details', { class: 'advanced' }, h('summary', null, 'Advanced'), field('SSH port', port, 'The port of the host’s sshd, reached through its agent.')),
      err,
      h('button', { type: 'submit', class: 'primary', disabled: !online }, 'Connect'),
      !online ? h('p', { class: 'muted' }, `The instance's agent is not connected (${i.state}).`) : null,
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      replace(err);
      const u = osUser.value.trim();
      if (!/^[a-z_][a-z0-9_.-]*\$?$/i.test(u) || u.length > 32) {
        err.appendChild(notice('error', 'Enter a valid OS user name (letters, digits, _ . -).'));
        osUser.focus();
        return;
      }
      const p = Number(port.value || '22');
      if (!Number.isInteger(p) || p < 1 || p > 65535) {
        err.appendChild(notice('error', 'The SSH port is a number from 1 to 65535.'));
        port.focus();
        return;
      }
      // The intent proves to the new tab that this button opened it (intent.ts).
      const store = browserStorage();
      const intent = store ? putIntent(store, { instanceId: i.instanceId, osUser: u, port: String(p) }) : '';
      const url = `/console/terminal?instanceId=${encodeURIComponent(i.instanceId)}&osUser=${encodeURIComponent(u)}&port=${p}${intent ? `&intent=${intent}` : ''}`;
      // A new tab, as the article's console does; noopener so it cannot
      // reach this page. The session cookie signs it in.
      // (With noopener, window.open answers null even when the tab opened.)
      window.open(url, '_blank', 'noopener');
      err.appendChild(notice('info', 'The terminal opens in a new tab. If a pop-up blocker stopped it: ', h('a', { href: url, target: '_blank', rel: 'noopener' }, 'open the terminal'), '.'));
    });
    eicPanel.append(
      h('p', null, 'A key valid for 60 seconds is made for this connection, authorized for you exactly as ', h('code', null, 'SendSSHPublicKey'), ', and used through the agent. No key is left behind.'),
      form,
    );
    sshPanel.append(
      h('p', null, 'From your own terminal, with the kaginashi client set up for this server:'),
      h('pre', { class: 'code' }, `kaginashi ssh ${osUser.value || i.defaultUser || 'USER'}@${i.instanceId}`),
    );
    const sshLine = (): string => `kaginashi ssh ${port.value && port.value !== '22' ? `--ssh-port ${port.value} ` : ''}${osUser.value || 'USER'}@${i.instanceId}`;
    sshPanel.querySelector('pre')!.textContent = sshLine();
    osUser.addEventListener('input', () => (sshPanel.querySelector('pre')!.textContent = sshLine()));
    port.addEventListener('input', () => (sshPanel.querySelector('pre')!.textContent = sshLine()));
    replace(
      panel,
      h('h2', null, 'Connect to ', i.name ? `${i.name} ` : '', h('code', null, i.instanceId)),
      // Connect would end in "authentication failed": say why first.
      i.signingKeyProblem
        ? notice(
            'warning',
            h('strong', null, 'Logins with pushed keys fail on this host. '),
            'Its agent reports: ',
            i.signingKeyProblem,
            /[.!?]$/.test(i.signingKeyProblem) ? ' ' : '. ',
            h('code', null, 'kaginashi-agent doctor'),
            ' on the host says more.',
          )
        : null,
      h(
        'dl',
        { class: 'facts' },
        fact('State', i.state),
        fact('OS', i.osPrettyName || i.osId || '—'),
        fact('Private IP', i.privateIp || '—'),
        fact('IPv6', Array.isArray(i.ipv6) ? i.ipv6.join(', ') || '—' : i.ipv6 || '—'),
        fact('Agent version', i.agentVersion || '—'),
        fact('Launched', formatTime(i.launchTime)),
        fact('Last seen', formatTime(i.lastSeen)),
      ),
      tablist,
      eicPanel,
      sshPanel,
    );
  };

  search.addEventListener('input', draw);
  state.addEventListener('change', draw);

  const load = async (): Promise<void> => {
    try {
      instances = sortInstances((await ctx.app.api.instances()).instances ?? []);
      if (!ctx.left()) draw();
    } catch (e) {
      if (!ctx.left()) replace(messages, notice('error', describeError(e)));
    }
  };
  void load();

  // Live updates: the server pushes the whole list when something changes.
  const es = new EventSource('/console/api/instances/watch');
  let lastEvent = 0;
  es.addEventListener('instances', (ev) => {
    try {
      instances = sortInstances(JSON.parse((ev as MessageEvent).data).instances ?? []);
      lastEvent = Date.now();
      live.textContent = 'live';
      live.className = 'live live-on';
      draw();
    } catch {
      /* a malformed event is skipped; the next one replaces it */
    }
  });
  es.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live live-on';
  });
  es.addEventListener('error', (ev) => {
    const data = (ev as MessageEvent).data;
    if (data) {
      // The server's "event: error": the session ended. Stop retrying.
      es.close();
      live.textContent = 'stopped';
      live.className = 'live live-off';
      replace(messages, notice('error', 'Live updates stopped: ', safeMessage(data)));
      void ctx.app.api.loadSession().then((s) => {
        if (!s) ctx.app.api.onSignedOut();
      });
      return;
    }
    live.textContent = 'reconnecting…';
    live.className = 'live live-off';
  });
  const ticker = window.setInterval(() => {
    if (lastEvent && Date.now() - lastEvent > 45_000) {
      live.textContent = 'stale';
      live.className = 'live live-off';
    }
    // Refresh the "last seen" ages.
    for (const t of listBox.querySelectorAll('time')) {
      const v = t.getAttribute('datetime');
      if (v) t.textContent = ago(v);
    }
  }, 5000);
  ctx.onLeave(() => {
    es.close();
    clearInterval(ticker);
  });
  search.focus();
}

function sortInstances(xs: Instance[]): Instance[] {
  return [...xs].sort((a, b) => (a.name || '~').localeCompare(b.name || '~') || a.instanceId.localeCompare(b.instanceId));
}

function fact(k: string, v: string): HTMLElement[] {
  return [h('dt', null, k), h('dd', null, v)];
}

/**
 * A warning badge for an instance whose agent reports a signing-key
 * problem (every login with a pushed key fails there), with the agent's
 * text. The text comes from the host: it is a text node (h), never HTML.
 */
export function keyProblemBadge(problem: string | undefined): HTMLElement | null {
  if (!problem) return null;
  return h(
    'span',
    { class: 'badge badge-warn key-problem', role: 'note', 'aria-label': `Signing key problem: ${problem}` },
    h('span', { 'aria-hidden': 'true' }, '⚠ '),
    h('strong', null, 'Signing key problem: '),
    problem,
  );
}

export function tagChips(tags: Record<string, string> | undefined): HTMLElement {
  const entries = Object.entries(tags ?? {}).filter(([k]) => k !== 'Name');
  if (!entries.length) return h('span', { class: 'muted' }, '—');
  return h('ul', { class: 'chips' }, entries.map(([k, v]) => h('li', { class: 'chip' }, `${k}=${v}`)));
}

function safeMessage(data: string): string {
  try {
    const j = JSON.parse(data);
    return j.message ?? j.error?.message ?? data;
  } catch {
    return data;
  }
}
