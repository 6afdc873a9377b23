// The web console's browser tests (issue #6 §6): playwright-core driving
// Debian's chromium against a real server, agent and sshd that
// test/e2e/browser sets up. One browser, the steps in order (each builds
// on the last: the user made in one signs in in the next); a screenshot
// of each page in KG_SCREENSHOTS. Prints "N passed, N failed" and exits 1
// on any failure.
//
// Environment: KG_URL, KG_ACCOUNT, KG_REGION, KG_ROOT_SECRET, KG_INSTANCE_ID,
// KG_OS_USER, KG_SSH_PORT (the host sshd's port, default 22), KG_SEED_POLICY (examples/seed-policy-filled.json),
// KG_AGENT_DATA_DIR (the host agent's data directory),
// KG_SCREENSHOTS, KG_CHROMIUM (default chromium), KG_ONLY (a step name
// substring, to run a subset while developing).

import { chromium } from 'playwright-core';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { totpAt, stepNow } from './totp.mjs';

const env = (k, def) => {
  const v = process.env[k] ?? def;
  if (v === undefined || v === '') {
    console.error(`run.mjs: ${k} is not set (test/e2e/browser sets it)`);
    process.exit(2);
  }
  return v;
};
const URL_ = env('KG_URL').replace(/\/$/, '');
const ACCOUNT = env('KG_ACCOUNT');
const REGION = env('KG_REGION');
const ROOT_SECRET = env('KG_ROOT_SECRET');
const INSTANCE = env('KG_INSTANCE_ID');
const OS_USER = env('KG_OS_USER');
const SSH_PORT = env('KG_SSH_PORT', '22');
const SEED = readFileSync(env('KG_SEED_POLICY'), 'utf8');
const AGENT_DIR = env('KG_AGENT_DATA_DIR');
const SHOTS = env('KG_SCREENSHOTS');
const CHROMIUM = resolveBin(env('KG_CHROMIUM', 'chromium'));
const ONLY = process.env.KG_ONLY ?? '';
rmSync(SHOTS, { recursive: true, force: true }); // no stale FAIL-*.png from an earlier run
mkdirSync(SHOTS, { recursive: true });

function resolveBin(b) {
  if (b.includes('/')) return b;
  return execFileSync('sh', ['-c', `command -v ${b}`]).toString().trim();
}

// --- a tiny runner -----------------------------------------------------------

const results = [];
const started = Date.now();
const t0 = () => ((Date.now() - started) / 1000).toFixed(1).padStart(5) + 's';

async function step(name, fn) {
  if (ONLY && !name.includes(ONLY)) return;
  const s = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`${t0()} ok   ${name} (${Date.now() - s} ms)`);
  } catch (e) {
    results.push({ name, ok: false, err: e });
    // The whole message (a terminal's text is many lines: cut to a few,
    // it once made a shown prompt look missing), then where it was thrown.
    const where = String(e?.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 3);
    console.log(`${t0()} FAIL ${name}\n       ${[String(e?.message ?? e), ...where.map((l) => l.trim())].join('\n').split('\n').join('\n       ')}`);
    let i = 0;
    for (const p of context.pages()) await shot(p, `FAIL-${name.replace(/\W+/g, '-')}-${i++}`).catch(() => {});
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function shot(p, name) {
  await p.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: false });
}

// --- the browser -------------------------------------------------------------

const profile = mkdtempSync(path.join(tmpdir(), 'kaginashi-chromium-'));
// A fresh profile every run (launchPersistentContext's user data dir);
// Debian's chromium, never a browser downloaded by Playwright.
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  ignoreHTTPSErrors: true, // the server's own CA (test/e2e/harness)
  viewport: { width: 1366, height: 820 },
  locale: 'en-US',
  timezoneId: 'UTC',
  permissions: ['clipboard-read', 'clipboard-write'],
  serviceWorkers: 'block',
});
context.setDefaultTimeout(15_000);

// The CSP must hold: every violation (an inline style, a foreign origin)
// is recorded in the page and checked at the end.
const violations = [];
await context.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (e) => {
    (window.__csp ??= []).push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
  });
});
const consoleErrors = [];
const watch = (p) => {
  p.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${p.url()}: ${m.text()}`);
  });
  p.on('pageerror', (e) => consoleErrors.push(`${p.url()}: uncaught ${e.message}`));
  p.on('dialog', (d) => void d.accept());
};
context.on('page', watch);
let page = context.pages()[0] ?? (await context.newPage());
watch(page);

async function collectCSP(p) {
  const v = await p.evaluate(() => window.__csp ?? []).catch(() => []);
  for (const x of v) violations.push(`${p.url()}: ${x}`);
}

async function signIn(user, password, { mfa } = {}) {
  await page.goto(URL_ + '/console/signin');
  await page.getByLabel('Account ID').fill(ACCOUNT);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  if (mfa) {
    const code = page.getByLabel('MFA code');
    await code.waitFor({ state: 'visible' });
    await shot(page, '02-signin-mfa');
    await code.fill(mfa());
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  await collectCSP(page);
}

async function signOut() {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to the console' }).waitFor();
}

/** The terminal's visible text, one line per row. */
async function termText(p) {
  return p.locator('.xterm-rows').innerText();
}

/**
 * Waits for a terminal line matching re. With after, only lines below the
 * last line matching after count: a reconnected terminal keeps the first
 * session's text, whose prompts must not pass for the new session's.
 */
async function waitTermLine(p, re, timeout = 15_000, after = null) {
  const end = Date.now() + timeout;
  let last = '';
  while (Date.now() < end) {
    last = await termText(p);
    let lines = last.split('\n').map((l) => l.replace(/\u00a0/g, ' ').trimEnd());
    if (after) {
      const i = lines.findLastIndex((l) => after.test(l));
      lines = i < 0 ? [] : lines.slice(i + 1);
    }
    if (lines.some((l) => re.test(l))) return last;
    await p.waitForTimeout(100);
  }
  throw new Error(`no terminal line matching ${re}${after ? ` below ${after}` : ''} within ${timeout} ms; the terminal shows:\n${last}`);
}

/**
 * Waits for the shell's prompt on a line of its own ("$ ", the test user's
 * /bin/sh), before typing a command: keys typed before the shell has
 * started are echoed by the terminal at once, and the command's output then
 * follows the first prompt on its line ("$ ok"), which /^ok$/ never matches.
 */
async function waitPrompt(p, after = null) {
  return waitTermLine(p, /^\$$/, 15_000, after);
}

/** The terminal's rows: the rows its DOM renderer draws. */
async function termRows(p) {
  return p.evaluate(() => document.querySelectorAll('.xterm-rows > div').length);
}

/**
 * Resizes p's window and waits until the terminal's rows follow it, which
 * returns them. The fit runs in a ResizeObserver, at a frame some time
 * after the window changed (long on a loaded machine), and tells the PTY
 * then: a command typed before reads the old size, and rows counted
 * before are the old ones. (It waited a fixed 300 ms.) The sizes used
 * differ in height, so the rows must change.
 */
async function resizeTerm(p, size) {
  const before = await termRows(p);
  await p.setViewportSize(size);
  await p.waitForFunction((n) => document.querySelectorAll('.xterm-rows > div').length !== n, before, { timeout: 15_000 });
  return termRows(p);
}

/**
 * The current TOTP step (30 s) once at least ms of it are left: codes
 * reckoned from it reach the server's check within the same step.
 */
async function stepWithRoom(ms) {
  while (30_000 - (Date.now() % 30_000) < ms) await page.waitForTimeout(100);
  return stepNow();
}

const PW = { alice: 'Alice-pw-' + Date.now(), bob: 'Bob-pw-' + Date.now(), carol: 'Carol-pw-' + Date.now() };
let bobSeed = '';

// --- the steps ---------------------------------------------------------------

await step('sign in as root', async () => {
  await page.goto(URL_ + '/');
  await page.waitForURL(/\/console\/signin/);
  await shot(page, '01-signin');
  await signIn('root', ROOT_SECRET);
  await page.waitForURL(/\/console\/instances/);
});

await step('instances list shows the host, live', async () => {
  const row = page.locator(`tr[data-instance-id="${INSTANCE}"]`);
  await row.waitFor();
  const text = await row.innerText();
  assert(text.includes('web') && text.includes('running'), `row: ${text}`);
  assert(text.includes('team=web'), `tags missing from the row: ${text}`);
  await page.locator('.live-on').waitFor({ timeout: 20_000 });
  await page.getByLabel('Search').fill('no-such-host');
  await page.getByText('No instance matches the search.').waitFor();
  await page.getByLabel('Search').fill('web');
  await row.waitFor();
  await row.getByRole('radio').check();
  await page.getByRole('tab', { name: 'EC2 Instance Connect' }).waitFor();
  await shot(page, '03-instances');
});

await step('a signing-key problem the agent reports shows on the instance', async () => {
  // A real problem: sshd's AuthorizedKeysCommand runs as nobody and cannot
  // read the pinned key through a keys directory of mode 0700. The agent
  // finds it at its next heartbeat (20 s) and reports it; the console's
  // watch pushes the list. The mode is put back at once after, so that the
  // login steps below work (the agent reports the end a heartbeat later).
  const keys = path.join(AGENT_DIR, 'keys');
  const mode = statSync(keys).mode & 0o777;
  chmodSync(keys, 0o700);
  const row = page.locator(`tr[data-instance-id="${INSTANCE}"]`);
  try {
    const badge = row.getByRole('note', { name: /^Signing key problem: / });
    await badge.waitFor({ timeout: 45_000 });
    const text = await badge.innerText();
    assert(text.includes(`${keys} is mode 0700`) && text.includes('cannot read the pinned signing key'), `badge: ${text}`);
    // The agent's words are text: no element came out of them.
    assert((await badge.locator('*').count()) === 2, 'the badge holds more than its icon and label');
    await row.getByRole('radio').check();
    const warn = page.locator('.connect-panel .notice-warning');
    await warn.waitFor();
    const w = await warn.innerText();
    assert(w.includes('Logins with pushed keys fail on this host') && w.includes(`${keys} is mode 0700`), `panel: ${w}`);
    await page.getByLabel('Search').fill('signing key');
    await row.waitFor();
    await shot(page, '03b-instances-key-problem');
    await page.getByLabel('Search').fill('');
  } finally {
    chmodSync(keys, mode);
  }
  await row.getByRole('note').waitFor({ state: 'detached', timeout: 45_000 });
});

await step('policy editor: the seed policy as published has errors, filled in a security warning', async () => {
  await page.goto(URL_ + '/console/iam/policies/new');
  await page.getByLabel('Start from').selectOption('seed');
  await page.locator('.finding[data-code="ARN_PLACEHOLDER"]').first().waitFor();
  const editor = page.getByLabel('Policy document (JSON)');
  await editor.fill(SEED);
  // The findings follow the text: the placeholders' errors go, the caution stays.
  await page.locator('.finding[data-code="ARN_PLACEHOLDER"]').first().waitFor({ state: 'detached' });
  const sec = page.locator('.finding[data-code="EIC_ALL_INSTANCES_UNCONDITIONED"]');
  await sec.waitFor();
  assert((await sec.innerText()).includes('Security warning'), 'the instance/* caution is not labelled a security warning');
  // As you type: a syntax error appears, then goes when fixed.
  await editor.press('End');
  await editor.pressSequentially('x');
  await page.locator('.finding-error').first().waitFor();
  await editor.press('Backspace');
  await page.locator('.finding-error').first().waitFor({ state: 'detached' });
  await page.getByLabel('Policy name').fill('EC2InstanceConnect-Allow-AllInstances');
  await shot(page, '04-policy-editor');
  await page.getByRole('button', { name: 'Create policy' }).click(); // confirms the security warning
  await page.waitForURL(/\/console\/iam\/policies\/view\?arn=/);
  await page.getByRole('heading', { name: 'Versions' }).waitFor();
  await page.locator('pre.code').filter({ hasText: 'ec2-instance-connect:SendSSHPublicKey' }).waitFor();
});

await step('policy: a new version, and a deny policy for the denied connect', async () => {
  const ed = page.getByLabel('New version (JSON)');
  await ed.waitFor();
  await ed.fill(SEED.replace('"Resource": "*"', '"Resource": ["*"]'));
  await page.getByRole('button', { name: 'Create version' }).click();
  await page.getByText('Created a new version.').waitFor();
  await page.locator('table code', { hasText: 'v2' }).waitFor();
  await page.goto(URL_ + '/console/iam/policies/new');
  await page.getByLabel('Policy name').fill('DenyConnect');
  await page.getByLabel('Policy document (JSON)').fill(JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'SeeInstances', Effect: 'Allow', Action: 'ec2:DescribeInstances', Resource: '*' },
      { Sid: 'AllowConnect', Effect: 'Allow', Action: 'ec2-instance-connect:SendSSHPublicKey', Resource: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/*` },
      { Sid: 'NoConnect', Effect: 'Deny', Action: 'ec2-instance-connect:SendSSHPublicKey', Resource: '*' },
    ],
  }, null, 2));
  await page.getByRole('button', { name: 'Create policy' }).click();
  await page.waitForURL(/\/console\/iam\/policies\/view\?arn=/);
});

async function createUser(name, password, { tags, key } = {}) {
  await page.goto(URL_ + '/console/iam/users');
  await page.getByLabel('User name').fill(name);
  if (tags) await page.getByLabel('Tags').fill(tags);
  await page.getByLabel('Console password').check();
  await page.getByLabel('Password', { exact: true }).fill(password);
  if (key) await page.getByLabel('Create an access key').check();
  await page.getByRole('button', { name: 'Create user' }).click();
  await page.getByText(`Created user ${name}.`).waitFor();
}

async function attach(user, policy) {
  await page.goto(URL_ + `/console/iam/users/${user}`);
  await page.getByLabel('Attach a policy').selectOption({ label: policy });
  await page.getByRole('button', { name: 'Attach policy' }).click();
  await page.locator('table a', { hasText: policy }).waitFor();
}

await step('IAM: create a user with tags, password and an access key; attach the seed policy', async () => {
  await createUser('alice', PW.alice, { tags: 'team=web', key: true });
  const secret = await page.locator('.secret-value[data-secret="Secret access key"]').innerText();
  assert(/^[A-Za-z0-9/+]{40}$/.test(secret), `secret access key shown: ${secret}`);
  await page.locator('table a', { hasText: 'alice' }).waitFor();
  await attach('alice', 'EC2InstanceConnect-Allow-AllInstances');
  // As AWS's console: a Type column, and a picker grouped and filtered by type.
  const attached = page.locator('tr', { has: page.locator('a', { hasText: 'EC2InstanceConnect-Allow-AllInstances' }) });
  const type = await attached.locator('[data-policy-type]').innerText();
  assert(type === 'Customer managed', `the attached policy's type: ${type}`);
  const picker = page.getByLabel('Attach a policy');
  assert((await picker.locator('optgroup[label="AWS managed"] > option', { hasText: /^AdministratorAccess$/ }).count()) === 1, 'AdministratorAccess is not under "AWS managed" in the picker');
  await page.getByLabel('Policy type').selectOption('AWS managed');
  assert((await picker.locator('optgroup[label="Customer managed"]').count()) === 0, 'the type filter left customer managed policies in the picker');
  assert((await picker.locator('optgroup[label="AWS managed"] > option').count()) > 0, 'the type filter emptied the picker');
  await page.locator('.chip', { hasText: 'team=web' }).waitFor();
  await page.getByText('The user has a console password').waitFor();
  await shot(page, '05-user');
  // The secret is never shown again.
  assert((await page.locator('.secret-value').count()) === 0, 'the secret is on the user page');
  await createUser('carol', PW.carol);
  await attach('carol', 'DenyConnect');
});

await step('IAM: groups', async () => {
  await page.goto(URL_ + '/console/iam/groups');
  await page.getByLabel('Group name').fill('ops');
  await page.getByRole('button', { name: 'Create group' }).click();
  await page.locator('table a', { hasText: 'ops' }).click();
  await page.getByLabel('Add a user').selectOption('alice');
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await page.locator('table a', { hasText: 'alice' }).waitFor();
});

await step('IAM: MFA with the QR code and two codes', async () => {
  await createUser('bob', PW.bob);
  await page.goto(URL_ + '/console/iam/users/bob');
  await page.getByRole('button', { name: 'Assign MFA device' }).click();
  const qr = page.getByRole('img', { name: /QR code/ });
  await qr.waitFor();
  const w = await qr.evaluate((img) => img.complete && img.naturalWidth);
  assert(w > 0, 'the QR code image did not load (CSP img-src data:?)');
  bobSeed = (await page.locator('.mfa-seed').innerText()).trim();
  assert(/^[A-Z2-7]+=*$/.test(bobSeed), `seed shown: ${bobSeed}`);
  await shot(page, '06-mfa-assign');
  // Two consecutive codes, both in the past: the sign-in below can use the
  // current one. The server checks them against its own step, one step
  // either way: were the step to end between the reckoning and the check,
  // code 2 would be two steps old and refused. Reckoned with room left.
  const n = await stepWithRoom(5_000);
  await page.getByLabel('MFA code 1').fill(totpAt(bobSeed, n - 2));
  await page.getByLabel('MFA code 2').fill(totpAt(bobSeed, n - 1));
  await page.getByRole('button', { name: 'Add MFA' }).click();
  await page.getByText('MFA is on').waitFor();
  await page.locator('table code', { hasText: ':mfa/' }).waitFor();
});

await step('policy simulator names the deciding statement', async () => {
  await page.goto(URL_ + '/console/iam/simulator');
  await page.getByLabel('User').selectOption({ label: 'carol' });
  await page.getByRole('button', { name: 'Simulate' }).click();
  const cell = page.locator('.decision');
  await cell.first().waitFor();
  assert((await cell.first().innerText()).includes('explicit'), `carol: ${await cell.first().innerText()}`);
  await page.getByLabel('User').selectOption({ label: 'alice' });
  await page.getByRole('button', { name: 'Simulate' }).click();
  await page.locator('.decision', { hasText: 'Allowed' }).waitFor();
  await page.locator('.sim-results code', { hasText: 'EC2InstanceConnect-Allow-AllInstances' }).waitFor();
  await shot(page, '07-simulator');
});

await step('sign in as alice (no MFA) and connect: echo ok in the browser terminal', async () => {
  await signOut();
  await signIn('alice', PW.alice);
  const row = page.locator(`tr[data-instance-id="${INSTANCE}"]`);
  await row.getByRole('radio').check();
  const u = page.locator('.connect-form').getByLabel('User name');
  await u.waitFor();
  const prefilled = await u.inputValue();
  await u.fill(OS_USER);
  if (SSH_PORT !== '22') {
    await page.locator('.connect-form summary', { hasText: 'Advanced' }).click();
    await page.getByLabel('SSH port').fill(SSH_PORT);
  }
  const [term] = await Promise.all([context.waitForEvent('page'), page.locator('.connect-form').getByRole('button', { name: 'Connect' }).click()]);
  await term.waitForURL(/\/console\/terminal\?/);
  await term.locator('.xterm-rows').waitFor();
  await term.locator('.term-status-ok').waitFor({ timeout: 30_000 });
  await waitPrompt(term);
  await term.locator('.xterm-helper-textarea').focus();
  await term.keyboard.type('echo ok\n');
  await waitTermLine(term, /^ok$/);
  // UTF-8 both ways: Japanese typed in, and bytes printed by the host.
  await term.keyboard.insertText('echo 鍵なし日本語');
  await term.keyboard.press('Enter');
  await waitTermLine(term, /^鍵なし日本語$/);
  await term.keyboard.type("printf '\\346\\227\\245\\346\\234\\254\\n'\n");
  await waitTermLine(term, /^日本$/);
  // Resize: the PTY follows the window.
  const rows = await resizeTerm(term, { width: 900, height: 500 });
  await term.keyboard.type('stty size\n');
  await waitTermLine(term, new RegExp(`^${rows} \\d+$`));
  // Paste from the clipboard.
  await term.evaluate(() => navigator.clipboard.writeText('echo pasted-ok'));
  await term.getByRole('button', { name: 'Paste' }).click();
  await waitTermLine(term, /\$ echo pasted-ok$/);
  await term.keyboard.press('Enter');
  await waitTermLine(term, /^pasted-ok$/);
  await resizeTerm(term, { width: 1366, height: 820 });
  await shot(term, '08-terminal');
  // A dropped connection (the host's sshd session killed): the page says
  // so and offers Reconnect, which opens a new session.
  await term.keyboard.type('kill -9 $PPID\n');
  const reconnect = term.getByRole('button', { name: 'Reconnect' });
  await reconnect.waitFor();
  assert((await term.locator('.term-status').innerText()) !== 'Connected', 'the status still says Connected after the drop');
  await reconnect.click();
  await term.locator('.term-status-ok', { hasText: 'Connected' }).waitFor({ timeout: 30_000 });
  // The drop is named in the terminal with the server's own words, and
  // only what follows it is the new session's: the first session's last
  // prompt may stand empty, its echo of the kill lost with the killed sshd.
  const dropped = /^\[disconnected: The connection to the host was lost\.\]$/;
  await waitTermLine(term, dropped);
  await waitPrompt(term, dropped);
  await term.keyboard.type('echo again-ok\n');
  await waitTermLine(term, /^again-ok$/, 15_000, dropped);
  await term.keyboard.type('exit\n');
  await term.getByText(/Session ended/).first().waitFor();
  await collectCSP(term);
  await term.close();
  console.log(`       (user name was prefilled with "${prefilled}")`);
});

await step('a terminal link from elsewhere asks before it connects', async () => {
  // Still signed in as alice. A link or redirect from another site lands
  // here without the Connect button's intent: no key may be pushed and no
  // session opened until the user says so.
  const term = await context.newPage();
  const sockets = [];
  term.on('websocket', (ws) => sockets.push(ws.url()));
  await term.goto(URL_ + `/console/terminal?instanceId=${INSTANCE}&osUser=${OS_USER}&port=${SSH_PORT}`);
  const ask = term.locator('.term-banner .notice-warning');
  await ask.waitFor({ timeout: 10_000 });
  await term.waitForTimeout(1500);
  assert(sockets.length === 0, `the page connected without being asked: ${sockets.join(', ')}`);
  // A forged intent is no better than none.
  await term.goto(URL_ + `/console/terminal?instanceId=${INSTANCE}&osUser=${OS_USER}&port=${SSH_PORT}&intent=${'0'.repeat(32)}`);
  await ask.waitFor({ timeout: 10_000 });
  await term.waitForTimeout(1000);
  assert(sockets.length === 0, `a forged intent connected: ${sockets.join(', ')}`);
  await ask.getByRole('button', { name: 'Connect' }).click();
  await term.locator('.term-status-ok', { hasText: 'Connected' }).waitFor({ timeout: 30_000 });
  assert(sockets.length === 1 && sockets[0].includes('/console/api/terminal'), `sockets: ${sockets.join(', ')}`);
  await collectCSP(term);
  await term.close();
});

await step('a denied connect shows the deciding statement', async () => {
  await signOut();
  await signIn('carol', PW.carol);
  const term = await context.newPage();
  await term.goto(URL_ + `/console/terminal?instanceId=${INSTANCE}&osUser=${OS_USER}&port=${SSH_PORT}`);
  // Opened by URL, not by the Connect button: the page asks first.
  await term.locator('.term-banner .notice-warning').getByRole('button', { name: 'Connect' }).click();
  const banner = term.locator('.term-banner .notice-error');
  await banner.waitFor({ timeout: 20_000 });
  const text = await banner.innerText();
  assert(/access denied/i.test(text), `banner: ${text}`);
  assert(text.includes('NoConnect') || text.includes('DenyConnect'), `the banner does not name the deciding statement: ${text}`);
  await shot(term, '09-terminal-denied');
  await term.close();
});

await step('audit shows the connect and the sign-ins', async () => {
  await signOut();
  await signIn('root', ROOT_SECRET);
  await page.goto(URL_ + '/console/audit');
  const user = page.getByRole('textbox', { name: 'User', exact: true });
  await user.fill('alice');
  await page.getByLabel('Event name').fill('SendSSHPublicKey');
  await page.getByRole('button', { name: 'Search' }).click();
  // alice's row: until the search answers, the page still lists the
  // unfiltered events, newest first — carol's denied connect on top.
  const row = page
    .locator('tr[data-event-name="SendSSHPublicKey"]')
    .filter({ has: page.getByRole('cell', { name: 'alice', exact: true }) })
    .first();
  await row.waitFor();
  await row.getByRole('button').click();
  const raw = page.locator('pre.raw-event');
  await raw.waitFor();
  const ev = await raw.innerText();
  assert(ev.includes(INSTANCE) && ev.includes('alice'), `raw event: ${ev.slice(0, 400)}`);
  await shot(page, '10-audit');
  await user.fill('');
  await page.getByLabel('Event name').fill('ConsoleLogin');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.locator('tr[data-event-name="ConsoleLogin"]').first().waitFor();
});

await step('the recording plays', async () => {
  await page.goto(URL_ + '/console/recordings');
  // The first session (newest first: the reconnected one is above it).
  const link = page.locator('tr', { hasText: 'alice' }).getByRole('link').last();
  await link.click();
  await page.waitForURL(/\/console\/recordings\/.+/);
  await page.getByRole('button', { name: /Play|Pause/ }).waitFor();
  await page.getByLabel('Speed').selectOption('8');
  await page.getByText('Finished').waitFor({ timeout: 30_000 });
  await waitTermLine(page, /^ok$/);
  await waitTermLine(page, /^鍵なし日本語$/);
  await shot(page, '11-recording');
});

await step('sign in with MFA', async () => {
  await signOut();
  await signIn('bob', PW.bob, { mfa: () => totpAt(bobSeed, stepNow()) });
  await page.locator('.badge-ok', { hasText: 'MFA' }).waitFor();
});

await step('wrong password backoff', async () => {
  await signOut();
  await page.getByLabel('Account ID').fill(ACCOUNT);
  await page.getByLabel('User name').fill('alice');
  let msg = '';
  for (let i = 0; i < 8 && !/Too many/.test(msg); i++) {
    await page.getByLabel('Password').fill('wrong-' + i);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const n = page.locator('.messages .notice').first();
    await n.waitFor();
    msg = await n.innerText();
    assert(/not right|Too many/.test(msg), `attempt ${i + 1}: ${msg}`);
    await page.waitForFunction(() => !document.querySelector('.signin-form button[type=submit]')?.textContent?.includes('Signing in'));
  }
  assert(/Too many failed sign-ins\. Try again in \d+ s/.test(msg), `no backoff after wrong passwords: ${msg}`);
  assert(await page.getByRole('button', { name: 'Sign in' }).isDisabled(), 'the button is not disabled during the backoff');
  await shot(page, '12-signin-backoff');
});

await step('no CSP violation and no uncaught error on any page', async () => {
  await collectCSP(page);
  const errs = consoleErrors.filter((e) => !/status of 40[13]|Failed to load resource|429|WebSocket connection/.test(e));
  assert(violations.length === 0, `CSP violations:\n${violations.join('\n')}`);
  assert(errs.length === 0, `console errors:\n${errs.join('\n')}`);
});

await context.close();
rmSync(profile, { recursive: true, force: true });
const failed = results.filter((r) => !r.ok).length;
console.log(`\nbrowser: ${results.length - failed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(1)} s); screenshots in ${SHOTS}`);
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
