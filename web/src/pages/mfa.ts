// A user's MFA devices: list, assign a virtual device (QR code from
// CreateVirtualMFADevice's QRCodePNG, then two consecutive codes for
// EnableMFADevice, as AWS asks), deactivate and delete.

import type { PageCtx } from '../app';
import { h, field, notice, replace, table, formatTime, button } from '../dom';
import { get, listOf, str } from '../aws';
import { section, act, dangerButton, inlineForm } from '../ui';

export function mfaSection(ctx: PageCtx, userName: string): { el: HTMLElement; reload: () => Promise<void> } {
  const api = ctx.app.api;
  return section('MFA devices', async (body, reload, note) => {
    const out = h('div');
    const devs = listOf(await api.aws('iam', 'ListMFADevices', { UserName: userName }), 'MFADevices', 'Devices');
    const assign = h('div', { class: 'mfa-assign' });
    body.append(
      table(
        'MFA devices',
        [
          { header: 'Serial number', cell: (d) => h('code', null, str(d, 'SerialNumber')) },
          { header: 'Enabled', cell: (d) => formatTime(str(d, 'EnableDate')) },
          {
            header: 'Actions',
            cell: (d) =>
              dangerButton('Remove', `Remove MFA device ${str(d, 'SerialNumber')} from ${userName}?`, () =>
                void act(out, async () => {
                  await api.aws('iam', 'DeactivateMFADevice', { UserName: userName, SerialNumber: str(d, 'SerialNumber') });
                  await api.aws('iam', 'DeleteVirtualMFADevice', { SerialNumber: str(d, 'SerialNumber') }).catch(() => undefined);
                }).then((ok) => { if (ok) void reload(); }),
              ),
          },
        ],
        devs,
        { empty: 'No MFA device: the user signs in with a password only.' },
      ),
      h('div', null, devs.length === 0 ? button('Assign MFA device', (ev) => {
        (ev.currentTarget as HTMLButtonElement).hidden = true;
        void startAssign();
      }, { class: 'primary' }) : null),
      assign,
      out,
    );

    async function startAssign(): Promise<void> {
      replace(out);
      replace(note);
      let dev: any;
      try {
        dev = get(await api.aws('iam', 'CreateVirtualMFADevice', { VirtualMFADeviceName: userName + '-' + Date.now().toString(36) }), 'VirtualMFADevice');
      } catch (e) {
        replace(note, notice('error', (e as Error).message));
        void reload(); // the Assign button again
        return;
      }
      const serial = str(dev, 'SerialNumber');
      const seed = base32Seed(str(dev, 'Base32StringSeed'));
      const png = str(dev, 'QRCodePNG');
      const c1 = h('input', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: 6, required: true, name: 'code1' });
      const c2 = h('input', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: 6, required: true, name: 'code2' });
      const aout = h('div');
      replace(
        assign,
        h('h3', null, 'Set up the authenticator app'),
        h('ol', null, h('li', null, 'Open an authenticator app (any TOTP app).'), h('li', null, 'Scan the QR code, or type the secret key.'), h('li', null, 'Enter two consecutive codes.')),
        png ? h('img', { class: 'qr', src: 'data:image/png;base64,' + png, alt: `QR code for the MFA device ${serial}`, width: 200, height: 200 }) : null,
        h('p', null, 'Secret key: ', h('code', { class: 'mfa-seed', 'data-secret': 'mfa-seed' }, seed)),
        inlineForm(
          async () => {
            if (!/^\d{6}$/.test(c1.value) || !/^\d{6}$/.test(c2.value)) {
              replace(aout, notice('error', 'Enter two 6-digit codes: one, then the next one the app shows.'));
              return;
            }
            if (await act(aout, () => api.aws('iam', 'EnableMFADevice', { UserName: userName, SerialNumber: serial, AuthenticationCode1: c1.value, AuthenticationCode2: c2.value }))) {
              replace(note, notice('success', 'MFA is on: from now on the user signs in with a code.'));
              await reload();
            }
          },
          field('MFA code 1', c1),
          field('MFA code 2', c2),
          h('button', { type: 'submit', class: 'primary' }, 'Add MFA'),
          button('Cancel', () => void api.aws('iam', 'DeleteVirtualMFADevice', { SerialNumber: serial }).catch(() => undefined).finally(() => void reload()), { class: 'small' }),
        ),
        aout,
      );
      c1.focus();
    }
  });
}

/** AWS sends Base32StringSeed base64-encoded; accept plain base32 too. */
export function base32Seed(v: string): string {
  if (/^[A-Z2-7]+=*$/.test(v)) return v;
  try {
    const d = atob(v);
    if (/^[A-Z2-7]+=*$/.test(d)) return d;
  } catch {
    /* not base64 */
  }
  return v;
}
