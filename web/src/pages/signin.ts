// Sign-in: account id, user name, password, and an MFA code once the
// server answers MFARequired (issue #6 §1).

import { ApiError, describeError } from '../api';
import { safeNext, type PageCtx } from '../app';
import { h, field, notice, replace } from '../dom';

export function signInPage(ctx: PageCtx): void {
  const remembered = safeStorage('kaginashi.signin');
  const account = h('input', { name: 'accountId', autocomplete: 'organization', inputmode: 'numeric', required: true, pattern: '[0-9]{12}', maxlength: 12, value: remembered?.accountId ?? '' });
  const user = h('input', { name: 'userName', autocomplete: 'username', required: true, value: remembered?.userName ?? '' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const mfa = h('input', { name: 'mfaCode', autocomplete: 'one-time-code', inputmode: 'numeric', pattern: '[0-9]{6}', maxlength: 6 });
  const mfaField = field('MFA code', mfa, 'The 6-digit code from your authenticator app.');
  mfaField.hidden = true;
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const messages = h('div', { class: 'messages', 'aria-live': 'polite' });
  let countdown: number | undefined;
  ctx.onLeave(() => clearInterval(countdown));

  const form = h(
    'form',
    { class: 'signin-form', novalidate: true },
    field('Account ID', account, '12 digits. Root: the account of the server.'),
    field('User name', user, 'An IAM user name, or root.'),
    field('Password', password, 'For root: the root secret access key, unless a root password is set.'),
    mfaField,
    messages,
    submit,
  );

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(messages);
    const problems: string[] = [];
    if (!/^\d{12}$/.test(account.value.trim())) problems.push('The account ID is 12 digits.');
    if (!user.value.trim()) problems.push('Enter a user name.');
    if (!password.value) problems.push('Enter the password.');
    if (!mfaField.hidden && !/^\d{6}$/.test(mfa.value.trim())) problems.push('The MFA code is 6 digits.');
    if (problems.length) {
      messages.appendChild(notice('error', problems.join(' ')));
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      await ctx.app.api.signIn(account.value.trim(), user.value.trim(), password.value, mfaField.hidden ? undefined : mfa.value.trim());
      try {
        localStorage.setItem('kaginashi.signin', JSON.stringify({ accountId: account.value.trim(), userName: user.value.trim() }));
      } catch {
        /* storage may be off: only a convenience */
      }
      ctx.app.navigate(safeNext(ctx.query.get('next')), true);
      return;
    } catch (e) {
      submit.textContent = 'Sign in';
      submit.disabled = false;
      if (!(e instanceof ApiError)) {
        messages.appendChild(notice('error', describeError(e)));
        return;
      }
      switch (e.code) {
        case 'MFARequired':
          if (mfaField.hidden) {
            mfaField.hidden = false;
            mfa.required = true;
            messages.appendChild(notice('info', 'This user has an MFA device. Enter the code from your authenticator app.'));
          } else {
            messages.appendChild(notice('error', 'Enter the 6-digit code from your authenticator app.'));
          }
          mfa.focus();
          return;
        case 'TooManyAttempts': {
          let left = Math.max(1, Math.ceil(e.retryAfterSeconds ?? 30));
          const n = notice('error', '');
          const say = () => (n.textContent = `Too many failed sign-ins. Try again in ${left} s.`);
          say();
          messages.appendChild(n);
          submit.disabled = true;
          clearInterval(countdown);
          countdown = window.setInterval(() => {
            left--;
            if (left <= 0) {
              clearInterval(countdown);
              submit.disabled = false;
              n.textContent = 'You can try again now.';
              n.className = 'notice notice-info';
              return;
            }
            say();
          }, 1000);
          return;
        }
        case 'InvalidCredentials':
          messages.appendChild(notice('error', 'The account ID, user name, password or MFA code is not right.'));
          password.value = '';
          if (!mfaField.hidden) mfa.value = '';
          password.focus();
          return;
        default:
          messages.appendChild(notice('error', describeError(e)));
      }
    }
  });

  ctx.main.classList.add('signin');
  ctx.main.append(
    h(
      'div',
      { class: 'signin-card' },
      h('p', { class: 'brand brand-large' }, h('span', { class: 'brand-name' }, 'kaginashi'), h('span', { class: 'brand-jp', lang: 'ja' }, '鍵なし')),
      h('h1', null, 'Sign in to the console'),
      h('p', { class: 'muted' }, 'SSH to your servers with no long-lived key and no password.'),
      form,
    ),
  );
  (account.value ? (user.value ? password : user) : account).focus();
}

function safeStorage(key: string): { accountId?: string; userName?: string } | null {
  try {
    const v = localStorage.getItem(key);
    return v ? JSON.parse(v) : null;
  } catch {
    return null;
  }
}
