// The policy simulator: SimulatePrincipalPolicy for a user, actions,
// resources and context entries → the decision and the deciding statement.

import type { PageCtx } from '../app';
import { h, field, notice, replace, table, button } from '../dom';
import { describeError } from '../api';
import { get, list, listOf, str, memberParams } from '../aws';
import { pageHead } from '../ui';

export function simulatorPage(ctx: PageCtx): void {
  const api = ctx.app.api;
  const s = api.session!;
  const user = h('select', { name: 'user', required: true }, h('option', { value: '' }, 'Loading users…'));
  const actions = h('textarea', { name: 'actions', rows: 3, spellcheck: 'false', value: ctx.query.get('action') ?? 'ec2-instance-connect:SendSSHPublicKey' });
  const resources = h('textarea', { name: 'resources', rows: 2, spellcheck: 'false', value: ctx.query.get('resource') ?? `arn:aws:ec2:${s.region}:${s.accountId}:instance/i-0123456789abcdef0` });
  const contextRows = h('div', { class: 'context-rows' });
  const addContext = (k = '', v = '', type = 'string'): void => {
    const key = h('input', { 'aria-label': 'Context key', placeholder: 'ec2:osuser', value: k, class: 'ctx-key' });
    const val = h('input', { 'aria-label': 'Values (comma-separated)', placeholder: 'ec2-user', value: v, class: 'ctx-values' });
    const typ = h('select', { 'aria-label': 'Type', class: 'ctx-type' }, ['string', 'stringList', 'numeric', 'numericList', 'boolean', 'booleanList', 'ip', 'ipList', 'date', 'dateList'].map((t) => h('option', { value: t, selected: t === type }, t)));
    const row = h('div', { class: 'context-row' }, key, typ, val);
    row.appendChild(button('Remove', () => row.remove(), { class: 'small', 'aria-label': 'Remove this context entry' }));
    contextRows.appendChild(row);
  };
  addContext('ec2:osuser', 'ec2-user');
  const out = h('div', { class: 'sim-results', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'card' },
    field('User', user),
    field('Actions', actions, 'One per line, e.g. ec2-instance-connect:SendSSHPublicKey'),
    field('Resource ARNs', resources, 'One per line.'),
    h('fieldset', null, h('legend', null, 'Context'), contextRows, button('Add context entry', () => addContext(), { class: 'small' })),
    h('button', { type: 'submit', class: 'primary' }, 'Simulate'),
  );
  void (async () => {
    try {
      const users = listOf(await api.aws('iam', 'ListUsers', { MaxItems: '1000' }), 'Users');
      replace(user, h('option', { value: '' }, 'Choose a user…'), users.map((u) => h('option', { value: str(u, 'Arn', 'ARN'), selected: str(u, 'UserName') === ctx.query.get('user') }, str(u, 'UserName'))));
    } catch (e) {
      replace(user, h('option', { value: '' }, 'Users cannot be listed'));
      out.appendChild(notice('error', describeError(e)));
    }
  })();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(out);
    const acts = lines(actions.value);
    const res = lines(resources.value);
    if (!user.value || !acts.length) {
      out.appendChild(notice('error', 'Choose a user and at least one action.'));
      return;
    }
    const params: Record<string, string> = { PolicySourceArn: user.value, ...memberParams('ActionNames', acts), ...memberParams('ResourceArns', res) };
    let n = 0;
    for (const row of contextRows.querySelectorAll('.context-row')) {
      const k = (row.querySelector('.ctx-key') as HTMLInputElement).value.trim();
      const v = (row.querySelector('.ctx-values') as HTMLInputElement).value;
      const t = (row.querySelector('.ctx-type') as HTMLSelectElement).value;
      if (!k) continue;
      n++;
      params[`ContextEntries.member.${n}.ContextKeyName`] = k;
      params[`ContextEntries.member.${n}.ContextKeyType`] = t;
      const vals = t.endsWith('List') ? v.split(',').map((x) => x.trim()).filter(Boolean) : [v.trim()];
      vals.forEach((x, i) => (params[`ContextEntries.member.${n}.ContextKeyValues.member.${i + 1}`] = x));
    }
    try {
      const r = await api.aws('iam', 'SimulatePrincipalPolicy', params);
      const results = listOf(r, 'EvaluationResults', 'Results');
      out.append(
        h('h2', null, 'Results'),
        table(
          'Simulation results',
          [
            { header: 'Action', cell: (x) => h('code', null, str(x, 'EvalActionName')) },
            { header: 'Resource', cell: (x) => h('code', null, str(x, 'EvalResourceName')) },
            { header: 'Decision', cell: (x) => h('span', { class: `decision decision-${str(x, 'EvalDecision')}` }, decisionLabel(str(x, 'EvalDecision'))) },
            {
              header: 'Deciding statements',
              cell: (x) => {
                const m = listOf(x, 'MatchedStatements');
                return m.length ? h('ul', { class: 'plain' }, m.map((st) => h('li', null, h('code', null, str(st, 'SourcePolicyId', 'SourcePolicyID')), ` (${str(st, 'SourcePolicyType')})`))) : h('span', { class: 'muted' }, 'none: no statement allows it');
              },
            },
            { header: 'Missing context', cell: (x) => list(get(x, 'MissingContextValues')).map(String).join(', ') || '—' },
          ],
          results,
        ),
      );
    } catch (e) {
      out.appendChild(notice('error', describeError(e)));
    }
  });
  ctx.main.append(pageHead('Policy simulator'), h('p', { class: 'muted' }, 'What a user’s policies allow, and which statement decides — evaluated as IAM does (SimulatePrincipalPolicy).'), form, out);
}

function lines(s: string): string[] {
  return s.split('\n').map((x) => x.trim()).filter(Boolean);
}

function decisionLabel(d: string): string {
  return d === 'allowed' ? 'Allowed' : d === 'explicitDeny' ? 'Denied (explicit)' : d === 'implicitDeny' ? 'Denied (implicit)' : d;
}
