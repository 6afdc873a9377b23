// Managed policies: list, create from JSON with the validator's findings
// as you type, a policy's versions (view, create, set default, delete) and
// where it is attached.

import type { PageCtx } from '../app';
import { h, field, notice, replace, table, formatTime, debounce, button } from '../dom';
import { describeError, type Finding } from '../api';
import { get, listOf, str, policyDocument } from '../aws';
import { pageHead, crumbs, section, act, dangerButton, inlineForm } from '../ui';

export function policiesPage(ctx: PageCtx): void {
  const api = ctx.app.api;
  const listSec = section(
    'Customer managed policies',
    async (body) => {
      const ps = listOf(await api.aws('iam', 'ListPolicies', { Scope: 'Local', MaxItems: '1000' }), 'Policies');
      body.append(
        table(
          'Managed policies',
          [
            { header: 'Policy', cell: (p) => h('a', { href: `/console/iam/policies/view?arn=${encodeURIComponent(str(p, 'Arn', 'ARN'))}` }, str(p, 'PolicyName')) },
            { header: 'Description', cell: (p) => str(p, 'Description') || h('span', { class: 'muted' }, '—') },
            { header: 'Default version', cell: (p) => str(p, 'DefaultVersionId', 'DefaultVersionID') },
            { header: 'Attachments', cell: (p) => str(p, 'AttachmentCount') || '0' },
            { header: 'Boundary uses', cell: (p) => str(p, 'PermissionsBoundaryUsageCount') || '0' },
            { header: 'Updated', cell: (p) => formatTime(str(p, 'UpdateDate')) },
          ],
          ps,
          { empty: 'No policies yet.' },
        ),
      );
    },
    h('a', { href: '/console/iam/policies/new', class: 'button primary' }, 'Create policy'),
  );
  ctx.main.append(pageHead('Policies'), listSec.el);
}

/** The seed article's policy, placeholders as published (リージョン, アカウントID). */
export const SEED_POLICY = `{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ec2-instance-connect:SendSSHPublicKey",
                "ec2-instance-connect:OpenTunnel"
            ],
            "Resource": "arn:aws:ec2:リージョン:アカウントID:instance/*"
        },
        {
            "Effect": "Allow",
            "Action": "ec2:DescribeInstances",
            "Resource": "*"
        }
    ]
}`;

function examples(region: string, account: string): Record<string, [string, string]> {
  return {
    seed: ['The seed article’s policy (as published)', SEED_POLICY],
    seedFilled: ['The seed article’s policy, filled in for this account', SEED_POLICY.replace('リージョン', region).replace('アカウントID', account)],
    least: [
      'Least privilege: one OS user, by tag',
      JSON.stringify(
        {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'SendSSHPublicKey',
              Effect: 'Allow',
              Action: 'ec2-instance-connect:SendSSHPublicKey',
              Resource: `arn:aws:ec2:${region}:${account}:instance/*`,
              Condition: { StringEquals: { 'aws:ResourceTag/team': 'web', 'ec2:osuser': 'ubuntu' } },
            },
            { Sid: 'Describe', Effect: 'Allow', Action: ['ec2:DescribeInstances', 'ec2:DescribeInstanceConnectEndpoints'], Resource: '*' },
          ],
        },
        null,
        4,
      ),
    ],
  };
}

const TYPE_LABEL: Record<string, string> = { ERROR: 'Error', SECURITY_WARNING: 'Security warning', WARNING: 'Warning', SUGGESTION: 'Suggestion' };
const TYPE_ORDER = ['ERROR', 'SECURITY_WARNING', 'WARNING', 'SUGGESTION'];

/**
 * A JSON policy editor: a monospace textarea and the validator's findings,
 * refreshed 400 ms after the last keystroke.
 */
export function policyEditor(ctx: PageCtx, initial: string, label = 'Policy document (JSON)'): { el: HTMLElement; text: HTMLTextAreaElement; findings: () => Finding[]; validateNow: () => Promise<void> } {
  const text = h('textarea', { class: 'code-editor', rows: 20, spellcheck: 'false', autocomplete: 'off', autocapitalize: 'off', name: 'policyDocument', value: initial });
  const box = h('div', { class: 'findings', 'aria-live': 'polite', 'aria-label': 'Validator findings' });
  const summary = h('p', { class: 'findings-summary muted' }, 'Checking…');
  let current: Finding[] = [];
  let seq = 0;
  const run = async (): Promise<void> => {
    const my = ++seq;
    const doc = text.value;
    if (!doc.trim()) {
      current = [];
      summary.textContent = 'Enter a policy document.';
      replace(box);
      return;
    }
    summary.textContent = 'Checking…';
    try {
      const r = await ctx.app.api.validatePolicy(doc);
      if (my !== seq || ctx.left()) return; // a newer keystroke is being checked
      current = (r.findings ?? []).slice().sort((a, b) => TYPE_ORDER.indexOf(ftype(a)) - TYPE_ORDER.indexOf(ftype(b)));
      const counts = TYPE_ORDER.map((t) => [t, current.filter((f) => ftype(f) === t).length] as const).filter(([, n]) => n > 0);
      summary.textContent = counts.length ? counts.map(([t, n]) => `${n} ${TYPE_LABEL[t].toLowerCase()}${n > 1 ? 's' : ''}`).join(', ') : 'No findings: the policy is valid.';
      summary.className = 'findings-summary ' + (counts.length ? 'has-findings' : 'ok');
      replace(
        box,
        current.length
          ? h(
              'ul',
              { class: 'finding-list' },
              current.map((f) =>
                h(
                  'li',
                  { class: `finding finding-${ftype(f).toLowerCase().replace('_', '-')}`, 'data-code': f.code },
                  h('span', { class: 'finding-type' }, TYPE_LABEL[ftype(f)] ?? ftype(f)),
                  ' ',
                  h('code', { class: 'finding-code' }, f.code),
                  f.path ? h('span', { class: 'finding-path' }, ' at ', h('code', null, f.path)) : null,
                  f.line ? h('span', { class: 'finding-line muted' }, ` (line ${f.line}${f.column ? `, column ${f.column}` : ''})`) : null,
                  h('p', { class: 'finding-message' }, f.message),
                  f.learnMoreLink && /^https?:\/\//.test(f.learnMoreLink) ? h('a', { href: f.learnMoreLink, target: '_blank', rel: 'noopener noreferrer' }, 'Learn more') : null,
                ),
              ),
            )
          : null,
      );
    } catch (e) {
      if (my !== seq || ctx.left()) return;
      summary.textContent = 'The validator could not be reached: ' + describeError(e);
    }
  };
  const later = debounce(() => void run(), 400);
  text.addEventListener('input', later);
  void run();
  const el = h('div', { class: 'editor' }, field(label, text), h('div', { class: 'findings-pane' }, h('h3', null, 'Findings'), summary, box));
  return { el, text, findings: () => current, validateNow: run };
}

function ftype(f: Finding): string {
  return (f.findingType ?? f.type ?? 'WARNING').toUpperCase();
}

export function newPolicyPage(ctx: PageCtx): void {
  const api = ctx.app.api;
  const s = api.session!;
  const ex = examples(s.region, s.accountId);
  const name = h('input', { name: 'policyName', required: true, autocomplete: 'off', maxlength: 128, pattern: '[A-Za-z0-9+=,.@_\\-]+' });
  const desc = h('input', { name: 'description', autocomplete: 'off', maxlength: 1000 });
  const editor = policyEditor(ctx, ex.seedFilled[1]);
  const start = h('select', { name: 'example' }, Object.entries(ex).map(([k, [label]]) => h('option', { value: k, selected: k === 'seedFilled' }, label)), h('option', { value: 'blank' }, 'Blank'));
  start.addEventListener('change', () => {
    editor.text.value = start.value === 'blank' ? '{\n    "Version": "2012-10-17",\n    "Statement": []\n}' : ex[start.value][1];
    void editor.validateNow();
  });
  const out = h('div');
  const form = h(
    'form',
    { class: 'card' },
    field('Policy name', name, 'Letters, digits and + = , . @ _ -; e.g. EC2InstanceConnect-Allow-AllInstances'),
    field('Description', desc),
    field('Start from', start),
    editor.el,
    out,
    h('button', { type: 'submit', class: 'primary' }, 'Create policy'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(out);
    if (!name.value.trim()) {
      out.appendChild(notice('error', 'Enter a policy name.'));
      name.focus();
      return;
    }
    await editor.validateNow();
    if (editor.findings().some((f) => ftype(f) === 'ERROR')) {
      out.appendChild(notice('error', 'Fix the errors the validator found first.'));
      return;
    }
    const sec = editor.findings().filter((f) => ftype(f) === 'SECURITY_WARNING');
    if (sec.length && !window.confirm(`The validator has ${sec.length} security warning(s):\n\n${sec.map((f) => '• ' + f.message).join('\n')}\n\nCreate the policy anyway?`)) return;
    try {
      const r = await api.aws('iam', 'CreatePolicy', { PolicyName: name.value.trim(), PolicyDocument: editor.text.value, ...(desc.value ? { Description: desc.value } : {}) });
      const arn = str(get(r, 'Policy'), 'Arn', 'ARN');
      ctx.app.navigate(`/console/iam/policies/view?arn=${encodeURIComponent(arn)}`, false, `Created policy ${name.value.trim()}.`);
    } catch (e) {
      out.appendChild(notice('error', describeError(e)));
    }
  });
  ctx.main.append(crumbs(['Policies', '/console/iam/policies'], ['Create policy', null]), pageHead('Create policy'), form);
  name.focus();
}

export function policyPage(ctx: PageCtx): void {
  const api = ctx.app.api;
  const arn = ctx.query.get('arn') ?? '';
  const pname = arn.slice(arn.lastIndexOf('/') + 1);
  ctx.main.append(crumbs(['Policies', '/console/iam/policies'], [pname || 'Policy', null]), pageHead(h('span', null, 'Policy ', h('code', null, pname))));
  if (!arn.startsWith('arn:')) {
    ctx.main.append(notice('error', 'No policy ARN in the address.'));
    return;
  }
  const docBox = h('div');
  const summary = section('Summary', async (body) => {
    const p = get(await api.aws('iam', 'GetPolicy', { PolicyArn: arn }), 'Policy');
    body.append(
      h(
        'dl',
        { class: 'facts' },
        h('dt', null, 'ARN'),
        h('dd', null, h('code', null, arn)),
        h('dt', null, 'Description'),
        h('dd', null, str(p, 'Description') || '—'),
        h('dt', null, 'Default version'),
        h('dd', null, str(p, 'DefaultVersionId', 'DefaultVersionID')),
        h('dt', null, 'Attachments'),
        h('dd', null, str(p, 'AttachmentCount') || '0'),
        h('dt', null, 'Created'),
        h('dd', null, formatTime(str(p, 'CreateDate'))),
      ),
    );
  });
  const versions = section('Versions', async (body, reload) => {
    const out = h('div');
    const vs = listOf(await api.aws('iam', 'ListPolicyVersions', { PolicyArn: arn }), 'Versions', 'PolicyVersions');
    const show = async (v: string): Promise<void> => {
      try {
        const pv = get(await api.aws('iam', 'GetPolicyVersion', { PolicyArn: arn, VersionId: v }), 'PolicyVersion', 'Version');
        replace(docBox, h('h3', null, `Document of ${v}`), h('pre', { class: 'code', tabindex: '0', 'aria-label': `Policy document version ${v}` }, policyDocument(get(pv, 'Document'))));
      } catch (e) {
        replace(docBox, notice('error', describeError(e)));
      }
    };
    body.append(
      table(
        'Policy versions',
        [
          { header: 'Version', cell: (v) => h('code', null, str(v, 'VersionId', 'VersionID')) },
          { header: 'Default', cell: (v) => (String(get(v, 'IsDefaultVersion')) === 'true' ? h('span', { class: 'badge badge-ok' }, 'default') : '') },
          { header: 'Created', cell: (v) => formatTime(str(v, 'CreateDate')) },
          {
            header: 'Actions',
            cell: (v) => {
              const id = str(v, 'VersionId', 'VersionID');
              const isDefault = String(get(v, 'IsDefaultVersion')) === 'true';
              return h(
                'div',
                { class: 'row-actions' },
                button('View', () => void show(id), { class: 'small' }),
                isDefault ? null : button('Set as default', () => void act(out, () => api.aws('iam', 'SetDefaultPolicyVersion', { PolicyArn: arn, VersionId: id })).then((ok) => { if (ok) void reload(); }), { class: 'small' }),
                isDefault ? null : dangerButton('Delete', `Delete version ${id}?`, () => void act(out, () => api.aws('iam', 'DeletePolicyVersion', { PolicyArn: arn, VersionId: id })).then((ok) => { if (ok) void reload(); })),
              );
            },
          },
        ],
        vs,
      ),
      out,
      docBox,
    );
    const def = vs.find((v) => String(get(v, 'IsDefaultVersion')) === 'true');
    if (def) await show(str(def, 'VersionId', 'VersionID'));
  });

  // A new version starts from the default version's document.
  const newVersion = h('section', { class: 'card' }, h('h2', null, 'Create a new version'));
  void (async () => {
    try {
      const p = get(await api.aws('iam', 'GetPolicy', { PolicyArn: arn }), 'Policy');
      const pv = get(await api.aws('iam', 'GetPolicyVersion', { PolicyArn: arn, VersionId: str(p, 'DefaultVersionId', 'DefaultVersionID') }), 'PolicyVersion', 'Version');
      if (ctx.left()) return;
      const editor = policyEditor(ctx, policyDocument(get(pv, 'Document')), 'New version (JSON)');
      const setDefault = h('input', { type: 'checkbox', checked: true, id: 'set-default' });
      const out = h('div');
      newVersion.append(
        inlineForm(
          async () => {
            await editor.validateNow();
            if (editor.findings().some((f) => ftype(f) === 'ERROR')) {
              replace(out, notice('error', 'Fix the errors the validator found first.'));
              return;
            }
            if (await act(out, () => api.aws('iam', 'CreatePolicyVersion', { PolicyArn: arn, PolicyDocument: editor.text.value, SetAsDefault: String(setDefault.checked) }), 'Created a new version.')) {
              await versions.reload();
            }
          },
          editor.el,
          h('div', { class: 'check' }, setDefault, h('label', { for: 'set-default' }, 'Make it the default version')),
          h('button', { type: 'submit', class: 'primary' }, 'Create version'),
        ),
        out,
      );
    } catch (e) {
      newVersion.append(notice('error', describeError(e)));
    }
  })();

  const attach = section('Attach', async (body) => {
    const out = h('div');
    const [users, groups] = await Promise.all([api.aws('iam', 'ListUsers', { MaxItems: '1000' }), api.aws('iam', 'ListGroups', {}).catch(() => ({}))]);
    const pickUser = h('select', null, h('option', { value: '' }, 'Choose a user…'), listOf(users, 'Users').map((u) => h('option', { value: str(u, 'UserName') }, str(u, 'UserName'))));
    const pickGroup = h('select', null, h('option', { value: '' }, 'Choose a group…'), listOf(groups, 'Groups').map((g) => h('option', { value: str(g, 'GroupName') }, str(g, 'GroupName'))));
    body.append(
      h('p', { class: 'muted' }, 'Attach this policy to a user or a group. Detach it from the user’s or group’s page.'),
      inlineForm(
        async () => {
          if (pickUser.value) await act(out, () => api.aws('iam', 'AttachUserPolicy', { UserName: pickUser.value, PolicyArn: arn }), `Attached to ${pickUser.value}.`).then((ok) => { if (ok) void summary.reload(); });
        },
        field('User', pickUser),
        h('button', { type: 'submit' }, 'Attach to user'),
      ),
      inlineForm(
        async () => {
          if (pickGroup.value) await act(out, () => api.aws('iam', 'AttachGroupPolicy', { GroupName: pickGroup.value, PolicyArn: arn }), `Attached to ${pickGroup.value}.`).then((ok) => { if (ok) void summary.reload(); });
        },
        field('Group', pickGroup),
        h('button', { type: 'submit' }, 'Attach to group'),
      ),
      out,
      h('hr'),
      dangerButton('Delete policy', `Delete the policy ${pname}? It must be detached everywhere first.`, () =>
        void act(out, async () => {
          for (const v of listOf(await api.aws('iam', 'ListPolicyVersions', { PolicyArn: arn }), 'Versions', 'PolicyVersions')) {
            if (String(get(v, 'IsDefaultVersion')) !== 'true') await api.aws('iam', 'DeletePolicyVersion', { PolicyArn: arn, VersionId: str(v, 'VersionId', 'VersionID') });
          }
          await api.aws('iam', 'DeletePolicy', { PolicyArn: arn });
        }).then((ok) => { if (ok) void ctx.app.navigate('/console/iam/policies', false, `Deleted ${pname}.`); }),
      ),
    );
  });
  ctx.main.append(h('div', { class: 'cards' }, summary.el, versions.el, newVersion, attach.el));
}
