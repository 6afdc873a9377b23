// IAM users: list, create (tags, console password, first access key), and
// a user's page: tags, permissions (attach/detach managed policies, inline
// policies), groups, access keys (secret shown once), console password, MFA.

import type { PageCtx } from '../app';
import { h, field, notice, replace, table, formatTime, button } from '../dom';
import { get, list, listOf, str, tagMap, tagParams } from '../aws';
import { pageHead, crumbs, section, act, dangerButton, parseTags, secretOnce, inlineForm } from '../ui';
import { mfaSection } from './mfa';
import { policyPicker, policyTypeBadge } from '../policytype';

export function usersPage(ctx: PageCtx): void {
  const api = ctx.app.api;
  const out = h('div', { class: 'messages' });
  const name = h('input', { name: 'userName', required: true, autocomplete: 'off', maxlength: 64, pattern: '[A-Za-z0-9+=,.@_\\-]+' });
  const tags = h('textarea', { name: 'tags', rows: 2, placeholder: 'team=ops' });
  const wantPassword = h('input', { type: 'checkbox', name: 'consolePassword' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', disabled: true });
  const wantKey = h('input', { type: 'checkbox', name: 'accessKey' });
  wantPassword.addEventListener('change', () => (password.disabled = !wantPassword.checked));
  const form = h(
    'form',
    { class: 'card create-form', 'aria-labelledby': 'create-user-title' },
    h('h2', { id: 'create-user-title' }, 'Create user'),
    field('User name', name, 'Letters, digits and + = , . @ _ -; up to 64.'),
    field('Tags', tags, 'One KEY=VALUE per line (optional).'),
    h('div', { class: 'check' }, wantPassword, h('label', { for: (wantPassword.id = 'want-password') }, 'Console password')),
    field('Password', password),
    h('div', { class: 'check' }, wantKey, h('label', { for: (wantKey.id = 'want-key') }, 'Create an access key')),
    h('button', { type: 'submit', class: 'primary' }, 'Create user'),
    out,
  );
  const listSec = section('Users', async (body) => {
    const r = await api.aws('iam', 'ListUsers', { MaxItems: '1000' });
    const users = listOf(r, 'Users');
    body.append(
      table(
        'IAM users',
        [
          { header: 'User name', cell: (u) => h('a', { href: `/console/iam/users/${encodeURIComponent(str(u, 'UserName'))}` }, str(u, 'UserName')) },
          { header: 'ARN', cell: (u) => h('code', null, str(u, 'Arn', 'ARN')) },
          { header: 'Path', cell: (u) => str(u, 'Path') },
          { header: 'Created', cell: (u) => formatTime(str(u, 'CreateDate')) },
        ],
        users,
        { empty: 'No IAM users yet.' },
      ),
    );
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(out);
    const userName = name.value.trim();
    let tagPairs: [string, string][];
    try {
      tagPairs = parseTags(tags.value);
    } catch (e) {
      out.appendChild(notice('error', (e as Error).message));
      return;
    }
    if (!userName) {
      out.appendChild(notice('error', 'Enter a user name.'));
      name.focus();
      return;
    }
    if (wantPassword.checked && !password.value) {
      out.appendChild(notice('error', 'Enter the console password, or untick it.'));
      password.focus();
      return;
    }
    const ok = await act(out, () => api.aws('iam', 'CreateUser', { UserName: userName, ...tagParams(tagPairs) }));
    if (!ok) return;
    const done: HTMLElement[] = [notice('success', 'Created user ', h('a', { href: `/console/iam/users/${encodeURIComponent(userName)}` }, userName), '.')];
    if (wantPassword.checked) {
      try {
        await api.aws('iam', 'CreateLoginProfile', { UserName: userName, Password: password.value });
        done.push(notice('success', 'The user can sign in to the console with the password.'));
      } catch (e) {
        done.push(notice('error', 'The console password was not set: ', (e as Error).message));
      }
    }
    if (wantKey.checked) {
      try {
        const k = get(await api.aws('iam', 'CreateAccessKey', { UserName: userName }), 'AccessKey');
        done.push(secretOnce('Access key', [['Access key ID', str(k, 'AccessKeyId', 'AccessKeyID')], ['Secret access key', str(k, 'SecretAccessKey')]]));
      } catch (e) {
        done.push(notice('error', 'No access key was made: ', (e as Error).message));
      }
    }
    replace(out, ...done);
    form.reset();
    password.disabled = true;
    void listSec.reload();
  });

  ctx.main.append(pageHead('Users'), h('div', { class: 'two-col' }, listSec.el, form));
}

export function userPage(ctx: PageCtx): void {
  const api = ctx.app.api;
  const userName = ctx.params.name;
  ctx.main.append(crumbs(['Users', '/console/iam/users'], [userName, null]), pageHead(h('span', null, 'User ', h('code', null, userName))));

  const summary = section('Summary', async (body, reload) => {
    const u = get(await api.aws('iam', 'GetUser', { UserName: userName }), 'User');
    const tags = tagMap(get(u, 'Tags'));
    const tagText = h('textarea', { rows: 2, placeholder: 'team=ops' });
    const out = h('div');
    body.append(
      h('dl', { class: 'facts' }, h('dt', null, 'ARN'), h('dd', null, h('code', null, str(u, 'Arn', 'ARN'))), h('dt', null, 'User ID'), h('dd', null, h('code', null, str(u, 'UserId', 'UserID'))), h('dt', null, 'Created'), h('dd', null, formatTime(str(u, 'CreateDate')))),
      h('h3', null, 'Tags'),
      Object.keys(tags).length
        ? h(
            'ul',
            { class: 'chips' },
            Object.entries(tags).map(([k, v]) =>
              h('li', { class: 'chip' }, `${k}=${v} `, button('×', () => void act(out, () => api.aws('iam', 'UntagUser', { UserName: userName, 'TagKeys.member.1': k })).then((ok) => { if (ok) void reload(); }), { class: 'chip-x', 'aria-label': `Remove tag ${k}` })),
            ),
          )
        : h('p', { class: 'muted' }, 'No tags.'),
      inlineForm(
        async () => {
          let pairs: [string, string][];
          try {
            pairs = parseTags(tagText.value);
          } catch (e) {
            replace(out, notice('error', (e as Error).message));
            return;
          }
          if (pairs.length && (await act(out, () => api.aws('iam', 'TagUser', { UserName: userName, ...tagParams(pairs) })))) await reload();
        },
        field('Add tags', tagText, 'KEY=VALUE per line'),
        h('button', { type: 'submit' }, 'Add tags'),
      ),
      out,
    );
  });

  const perms = section('Permissions', async (body, reload) => {
    const out = h('div');
    const [attached, inline, all] = await Promise.all([
      api.aws('iam', 'ListAttachedUserPolicies', { UserName: userName }),
      api.aws('iam', 'ListUserPolicies', { UserName: userName }),
      api.aws('iam', 'ListPolicies', { MaxItems: '1000' }).catch(() => ({})),
    ]);
    const att = listOf(attached, 'AttachedPolicies', 'Policies');
    const attachedArns = new Set(att.map((p) => str(p, 'PolicyArn', 'PolicyARN')));
    const choices = listOf(all, 'Policies').filter((p) => !attachedArns.has(str(p, 'Arn', 'ARN')));
    const { pick, filter } = policyPicker(choices, { name: 'policyArn' });
    body.append(
      h('h3', null, 'Managed policies'),
      table(
        'Attached managed policies',
        [
          { header: 'Policy', cell: (p) => h('a', { href: `/console/iam/policies/view?arn=${encodeURIComponent(str(p, 'PolicyArn', 'PolicyARN'))}` }, str(p, 'PolicyName')) },
          { header: 'Type', cell: (p) => policyTypeBadge(str(p, 'PolicyArn', 'PolicyARN')) },
          { header: 'ARN', cell: (p) => h('code', null, str(p, 'PolicyArn', 'PolicyARN')) },
          {
            header: 'Actions',
            cell: (p) =>
              dangerButton('Detach', `Detach ${str(p, 'PolicyName')} from ${userName}?`, () => void act(out, () => api.aws('iam', 'DetachUserPolicy', { UserName: userName, PolicyArn: str(p, 'PolicyArn', 'PolicyARN') })).then((ok) => { if (ok) void reload(); })),
          },
        ],
        att,
        { empty: 'No managed policy attached.' },
      ),
      inlineForm(
        async () => {
          if (!pick.value) {
            replace(out, notice('error', 'Choose a policy to attach.'));
            pick.focus();
            return;
          }
          if (await act(out, () => api.aws('iam', 'AttachUserPolicy', { UserName: userName, PolicyArn: pick.value }))) await reload();
        },
        field('Policy type', filter),
        field('Attach a policy', pick),
        h('button', { type: 'submit', class: 'primary' }, 'Attach policy'),
        h('a', { href: '/console/iam/policies/new', class: 'small' }, 'Create a policy'),
      ),
      h('h3', null, 'Inline policies'),
      table(
        'Inline policies',
        [
          { header: 'Name', cell: (n) => str(n, 'name') },
          {
            header: 'Actions',
            cell: (n) => dangerButton('Delete', `Delete inline policy ${str(n, 'name')}?`, () => void act(out, () => api.aws('iam', 'DeleteUserPolicy', { UserName: userName, PolicyName: str(n, 'name') })).then((ok) => { if (ok) void reload(); })),
          },
        ],
        list(get(inline, 'PolicyNames', 'Names')).map((n) => ({ name: typeof n === 'string' ? n : str(n, 'member') })),
        { empty: 'No inline policy.' },
      ),
      out,
    );
  });

  const groups = section('Groups', async (body, reload) => {
    const out = h('div');
    const [mine, all] = await Promise.all([api.aws('iam', 'ListGroupsForUser', { UserName: userName }), api.aws('iam', 'ListGroups', {}).catch(() => ({}))]);
    const g = listOf(mine, 'Groups');
    const have = new Set(g.map((x) => str(x, 'GroupName')));
    const pick = h('select', null, h('option', { value: '' }, 'Choose a group…'), listOf(all, 'Groups').filter((x) => !have.has(str(x, 'GroupName'))).map((x) => h('option', { value: str(x, 'GroupName') }, str(x, 'GroupName'))));
    body.append(
      table(
        'Groups of the user',
        [
          { header: 'Group', cell: (x) => h('a', { href: `/console/iam/groups/${encodeURIComponent(str(x, 'GroupName'))}` }, str(x, 'GroupName')) },
          {
            header: 'Actions',
            cell: (x) => dangerButton('Remove', `Remove ${userName} from ${str(x, 'GroupName')}?`, () => void act(out, () => api.aws('iam', 'RemoveUserFromGroup', { UserName: userName, GroupName: str(x, 'GroupName') })).then((ok) => { if (ok) void reload(); })),
          },
        ],
        g,
        { empty: 'In no group.' },
      ),
      inlineForm(
        async () => {
          if (pick.value && (await act(out, () => api.aws('iam', 'AddUserToGroup', { UserName: userName, GroupName: pick.value })))) await reload();
        },
        field('Add to group', pick),
        h('button', { type: 'submit' }, 'Add'),
      ),
      out,
    );
  });

  const keys = section('Access keys', async (body, reload) => {
    const out = h('div');
    const ks = listOf(await api.aws('iam', 'ListAccessKeys', { UserName: userName }), 'AccessKeyMetadata', 'Keys');
    body.append(
      table(
        'Access keys',
        [
          { header: 'Access key ID', cell: (k) => h('code', null, str(k, 'AccessKeyId', 'AccessKeyID')) },
          { header: 'Status', cell: (k) => str(k, 'Status') },
          { header: 'Created', cell: (k) => formatTime(str(k, 'CreateDate')) },
          {
            header: 'Actions',
            cell: (k) => {
              const id = str(k, 'AccessKeyId', 'AccessKeyID');
              const active = str(k, 'Status') === 'Active';
              return h(
                'div',
                { class: 'row-actions' },
                button(active ? 'Deactivate' : 'Activate', () => void act(out, () => api.aws('iam', 'UpdateAccessKey', { UserName: userName, AccessKeyId: id, Status: active ? 'Inactive' : 'Active' })).then((ok) => { if (ok) void reload(); }), { class: 'small' }),
                dangerButton('Delete', `Delete access key ${id}? Programs using it stop working.`, () => void act(out, () => api.aws('iam', 'DeleteAccessKey', { UserName: userName, AccessKeyId: id })).then((ok) => { if (ok) void reload(); })),
              );
            },
          },
        ],
        ks,
        { empty: 'No access key.' },
      ),
      button(
        'Create access key',
        async () => {
          try {
            const k = get(await api.aws('iam', 'CreateAccessKey', { UserName: userName }), 'AccessKey');
            await reload();
            body.prepend(secretOnce('New access key', [['Access key ID', str(k, 'AccessKeyId', 'AccessKeyID')], ['Secret access key', str(k, 'SecretAccessKey')]]));
          } catch (e) {
            replace(out, notice('error', (e as Error).message));
          }
        },
        { class: 'primary' },
      ),
      out,
    );
  });

  const login = section('Console password', async (body, reload) => {
    const out = h('div');
    let has = false;
    let created = '';
    try {
      const lp = get(await api.aws('iam', 'GetLoginProfile', { UserName: userName }), 'LoginProfile');
      has = true;
      created = str(lp, 'CreateDate');
    } catch (e) {
      if ((e as { code?: string }).code !== 'NoSuchEntity') throw e;
    }
    const pw = h('input', { type: 'password', autocomplete: 'new-password', required: true });
    body.append(
      h('p', null, has ? `The user has a console password (set ${formatTime(created)}).` : 'The user has no console password and cannot sign in to the console.'),
      inlineForm(
        async () => {
          if (!pw.value) {
            replace(out, notice('error', 'Enter a password.'));
            return;
          }
          if (await act(out, () => api.aws('iam', has ? 'UpdateLoginProfile' : 'CreateLoginProfile', { UserName: userName, Password: pw.value }), 'Password saved.')) {
            await reload();
          }
        },
        field(has ? 'New password' : 'Password', pw),
        h('button', { type: 'submit', class: 'primary' }, has ? 'Change password' : 'Set password'),
      ),
      h('div', null, has ? dangerButton('Remove console access', `Remove ${userName}'s console password?`, () => void act(out, () => api.aws('iam', 'DeleteLoginProfile', { UserName: userName })).then((ok) => { if (ok) void reload(); })) : null),
      out,
    );
  });

  ctx.main.append(h('div', { class: 'cards' }, summary.el, perms.el, groups.el, keys.el, login.el, mfaSection(ctx, userName).el));
}
