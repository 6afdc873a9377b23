// IAM groups: list, create, and a group's members and managed policies.

import type { PageCtx } from '../app';
import { h, field, notice, replace, table, formatTime } from '../dom';
import { get, listOf, str } from '../aws';
import { pageHead, crumbs, section, act, dangerButton, inlineForm } from '../ui';
import { policyPicker, policyTypeBadge } from '../policytype';

export function groupsPage(ctx: PageCtx): void {
  const api = ctx.app.api;
  const out = h('div');
  const name = h('input', { name: 'groupName', required: true, autocomplete: 'off', maxlength: 128 });
  const listSec = section('Groups', async (body) => {
    const gs = listOf(await api.aws('iam', 'ListGroups', {}), 'Groups');
    body.append(
      table(
        'IAM groups',
        [
          { header: 'Group', cell: (g) => h('a', { href: `/console/iam/groups/${encodeURIComponent(str(g, 'GroupName'))}` }, str(g, 'GroupName')) },
          { header: 'ARN', cell: (g) => h('code', null, str(g, 'Arn', 'ARN')) },
          { header: 'Created', cell: (g) => formatTime(str(g, 'CreateDate')) },
        ],
        gs,
        { empty: 'No groups yet.' },
      ),
    );
  });
  const form = inlineForm(
    async () => {
      const n = name.value.trim();
      if (!n) {
        replace(out, notice('error', 'Enter a group name.'));
        return;
      }
      if (await act(out, () => api.aws('iam', 'CreateGroup', { GroupName: n }), `Created group ${n}.`)) {
        name.value = '';
        await listSec.reload();
      }
    },
    field('Group name', name),
    h('button', { type: 'submit', class: 'primary' }, 'Create group'),
  );
  ctx.main.append(pageHead('Groups'), h('section', { class: 'card', 'aria-label': 'Create group' }, h('h2', null, 'Create group'), form, out), listSec.el);
}

export function groupPage(ctx: PageCtx): void {
  const api = ctx.app.api;
  const groupName = ctx.params.name;
  ctx.main.append(crumbs(['Groups', '/console/iam/groups'], [groupName, null]), pageHead(h('span', null, 'Group ', h('code', null, groupName))));
  const members = section('Members', async (body, reload) => {
    const out = h('div');
    const [g, users] = await Promise.all([api.aws('iam', 'GetGroup', { GroupName: groupName }), api.aws('iam', 'ListUsers', { MaxItems: '1000' }).catch(() => ({}))]);
    const ms = listOf(g, 'Users');
    const have = new Set(ms.map((u) => str(u, 'UserName')));
    const pick = h('select', null, h('option', { value: '' }, 'Choose a user…'), listOf(users, 'Users').filter((u) => !have.has(str(u, 'UserName'))).map((u) => h('option', { value: str(u, 'UserName') }, str(u, 'UserName'))));
    body.append(
      h('p', null, 'ARN: ', h('code', null, str(get(g, 'Group'), 'Arn', 'ARN'))),
      table(
        'Members',
        [
          { header: 'User', cell: (u) => h('a', { href: `/console/iam/users/${encodeURIComponent(str(u, 'UserName'))}` }, str(u, 'UserName')) },
          { header: 'Actions', cell: (u) => dangerButton('Remove', `Remove ${str(u, 'UserName')} from ${groupName}?`, () => void act(out, () => api.aws('iam', 'RemoveUserFromGroup', { GroupName: groupName, UserName: str(u, 'UserName') })).then((ok) => { if (ok) void reload(); })) },
        ],
        ms,
        { empty: 'No members.' },
      ),
      inlineForm(
        async () => {
          if (pick.value && (await act(out, () => api.aws('iam', 'AddUserToGroup', { GroupName: groupName, UserName: pick.value })))) await reload();
        },
        field('Add a user', pick),
        h('button', { type: 'submit' }, 'Add'),
      ),
      out,
    );
  });
  const policies = section('Managed policies', async (body, reload) => {
    const out = h('div');
    const [att, all] = await Promise.all([api.aws('iam', 'ListAttachedGroupPolicies', { GroupName: groupName }), api.aws('iam', 'ListPolicies', { MaxItems: '1000' }).catch(() => ({}))]);
    const ps = listOf(att, 'AttachedPolicies', 'Policies');
    const have = new Set(ps.map((p) => str(p, 'PolicyArn', 'PolicyARN')));
    const { pick, filter } = policyPicker(listOf(all, 'Policies').filter((p) => !have.has(str(p, 'Arn', 'ARN'))));
    body.append(
      table(
        'Attached policies',
        [
          { header: 'Policy', cell: (p) => h('a', { href: `/console/iam/policies/view?arn=${encodeURIComponent(str(p, 'PolicyArn', 'PolicyARN'))}` }, str(p, 'PolicyName')) },
          { header: 'Type', cell: (p) => policyTypeBadge(str(p, 'PolicyArn', 'PolicyARN')) },
          { header: 'Actions', cell: (p) => dangerButton('Detach', `Detach ${str(p, 'PolicyName')} from ${groupName}?`, () => void act(out, () => api.aws('iam', 'DetachGroupPolicy', { GroupName: groupName, PolicyArn: str(p, 'PolicyArn', 'PolicyARN') })).then((ok) => { if (ok) void reload(); })) },
        ],
        ps,
        { empty: 'No policy attached.' },
      ),
      inlineForm(
        async () => {
          if (pick.value && (await act(out, () => api.aws('iam', 'AttachGroupPolicy', { GroupName: groupName, PolicyArn: pick.value })))) await reload();
        },
        field('Policy type', filter),
        field('Attach a policy', pick),
        h('button', { type: 'submit', class: 'primary' }, 'Attach policy'),
      ),
      out,
    );
  });
  ctx.main.append(h('div', { class: 'cards' }, members.el, policies.el));
}
