// Unit tests of the console's pure helpers (node:test), run by
// scripts/webui-check.sh: the asciicast parser (with a seeded random
// "fuzz" pass), the AWS result readers, and the redirect guard.
//
//   cd web && node --test test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as esbuild from 'esbuild';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(path.join(tmpdir(), 'kaginashi-web-unit-'));
const entry = `
export { parseCast } from ${JSON.stringify(path.join(web, 'src/asciicast.ts'))};
export { get, str, list, listOf, tagMap, tagParams, memberParams, policyDocument } from ${JSON.stringify(path.join(web, 'src/aws.ts'))};
export { safeNext } from ${JSON.stringify(path.join(web, 'src/app.ts'))};
export { base32Seed } from ${JSON.stringify(path.join(web, 'src/pages/mfa.ts'))};
export { policyType } from ${JSON.stringify(path.join(web, 'src/policytype.ts'))};
export { putIntent, takeIntent, INTENT_TTL_MS } from ${JSON.stringify(path.join(web, 'src/intent.ts'))};
`;
await esbuild.build({
  stdin: { contents: entry, resolveDir: web, loader: 'ts' },
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  outfile: path.join(dir, 'm.mjs'),
  external: ['@xterm/*'],
  loader: { '.css': 'empty' },
  logLevel: 'error',
});
const m = await import(pathToFileURL(path.join(dir, 'm.mjs')).href);
rmSync(dir, { recursive: true, force: true });

test('parseCast reads asciicast v2: header, output, resize; skips input', () => {
  const c = m.parseCast(
    [
      JSON.stringify({ version: 2, width: 80, height: 24, timestamp: 1700000000 }),
      JSON.stringify([0.5, 'o', 'hello ']),
      JSON.stringify([0.6, 'i', 'secret typed']),
      JSON.stringify([1.0, 'r', '100x30']),
      JSON.stringify([1.5, 'o', 'こんにちは\r\n']),
      '',
    ].join('\n'),
  );
  assert.equal(c.width, 80);
  assert.equal(c.height, 24);
  assert.deepEqual(c.events, [
    [0.5, 'o', 'hello '],
    [1.0, 'r', '100x30'],
    [1.5, 'o', 'こんにちは\r\n'],
  ]);
  assert.equal(c.duration, 1.5);
});

test('parseCast shortens pauses to idle_time_limit', () => {
  const c = m.parseCast([JSON.stringify({ version: 2, width: 80, height: 24, idle_time_limit: 1 }), '[0.5,"o","a"]', '[10.5,"o","b"]', '[11,"o","c"]'].join('\n'));
  assert.deepEqual(c.events.map((e) => e[0]), [0.5, 1.5, 2]);
});

test('parseCast refuses what is not asciicast v2, saying why', () => {
  assert.throws(() => m.parseCast(''), /first line is not JSON/);
  assert.throws(() => m.parseCast('{"version":1,"width":80,"height":24}'), /version 1/);
  assert.throws(() => m.parseCast('{"version":2,"width":0,"height":24}'), /terminal size/);
  assert.throws(() => m.parseCast('{"version":2,"width":80,"height":24}\n[1,"o"]'), /Line 2.*not an event/);
  assert.throws(() => m.parseCast('{"version":2,"width":80,"height":24}\nnot json'), /Line 2.*not JSON/);
});

// A seeded random pass over mutated recordings: parseCast returns a sane
// Cast or throws an Error with a message, never anything else.
test('parseCast fuzz', () => {
  let seed = 0x6b67;
  const rnd = (n) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const base = ['{"version":2,"width":80,"height":24}', '[0.1,"o","ok\\r\\n"]', '[0.2,"r","90x30"]', '[0.3,"o","\\u001b[31mred"]'].join('\n');
  const alphabet = '{}[]",:0123456789.-eorix\\\n ';
  for (let i = 0; i < 3000; i++) {
    const chars = [...base];
    const edits = 1 + rnd(6);
    for (let k = 0; k < edits; k++) {
      const at = rnd(chars.length + 1);
      switch (rnd(3)) {
        case 0:
          chars.splice(at, 1);
          break;
        case 1:
          chars.splice(at, 0, alphabet[rnd(alphabet.length)]);
          break;
        default:
          chars[at] = alphabet[rnd(alphabet.length)];
      }
    }
    const input = chars.join('');
    let c;
    try {
      c = m.parseCast(input);
    } catch (e) {
      assert.ok(e instanceof Error && e.constructor === Error && e.message.length > 0, `input ${JSON.stringify(input)}: threw ${e}`);
      continue;
    }
    assert.ok(c.width > 0 && c.width <= 1000 && c.height > 0 && c.height <= 1000, `input ${JSON.stringify(input)}: size ${c.width}x${c.height}`);
    let last = 0;
    for (const [t, code, data] of c.events) {
      assert.ok(Number.isFinite(t) && t >= last, `input ${JSON.stringify(input)}: time ${t} after ${last}`);
      assert.ok(code === 'o' || (code === 'r' && /^\d+x\d+$/.test(data)), `input ${JSON.stringify(input)}: event ${code} ${data}`);
      last = t;
    }
  }
});

test('AWS result readers accept AWS member names and Go field names', () => {
  const r = { Users: [{ UserName: 'alice', ARN: 'arn:aws:iam::1:user/alice', UserID: 'AIDA1' }] };
  const u = m.listOf(r, 'Users')[0];
  assert.equal(m.str(u, 'Arn', 'ARN'), 'arn:aws:iam::1:user/alice');
  assert.equal(m.str(u, 'UserId'), 'AIDA1'); // case-insensitive
  assert.deepEqual(m.list({ member: [{ a: 1 }] }), [{ a: 1 }]);
  assert.deepEqual(m.list({ member: { a: 1 } }), [{ a: 1 }]);
  assert.deepEqual(m.list(undefined), []);
  assert.deepEqual(m.tagMap([{ Key: 'team', Value: 'web' }]), { team: 'web' });
  assert.deepEqual(m.tagMap({ member: [{ Key: 'a', Value: 'b' }] }), { a: 'b' });
  assert.deepEqual(m.tagParams([['team', 'web']]), { 'Tags.member.1.Key': 'team', 'Tags.member.1.Value': 'web' });
  assert.deepEqual(m.memberParams('ActionNames', ['a', 'b']), { 'ActionNames.member.1': 'a', 'ActionNames.member.2': 'b' });
});

test('policyDocument decodes IAM URL-encoded documents and pretty-prints', () => {
  const doc = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}';
  const enc = encodeURIComponent(doc);
  assert.equal(m.policyDocument(enc), JSON.stringify(JSON.parse(doc), null, 2));
  assert.equal(m.policyDocument(doc), JSON.stringify(JSON.parse(doc), null, 2));
  assert.equal(m.policyDocument('{"Resource":"100%"}'), '{\n  "Resource": "100%"\n}');
  assert.equal(m.policyDocument('not json'), 'not json');
});

test('safeNext follows only console paths (no open redirect)', () => {
  assert.equal(m.safeNext('/console/iam/users'), '/console/iam/users');
  for (const bad of [null, '', 'https://evil.example/', '//evil.example/console/', '/console/signin?next=/x', '/elsewhere']) {
    assert.equal(m.safeNext(bad), '/console/instances', String(bad));
  }
});

test('base32Seed reads the AWS base64-wrapped seed and a plain one', () => {
  const b32 = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  assert.equal(m.base32Seed(Buffer.from(b32).toString('base64')), b32);
  assert.equal(m.base32Seed(b32), b32);
});

test('policyType tells AWS managed policies from the account\'s own, by ARN', () => {
  assert.equal(m.policyType('arn:aws:iam::aws:policy/AdministratorAccess'), 'AWS managed');
  assert.equal(m.policyType('arn:aws:iam::aws:policy/job-function/ViewOnlyAccess'), 'AWS managed');
  assert.equal(m.policyType('arn:aws-cn:iam::aws:policy/ReadOnlyAccess'), 'AWS managed');
  // An account's own policy may bear an AWS policy's name, or "aws" in its path.
  assert.equal(m.policyType('arn:aws:iam::123456789012:policy/AdministratorAccess'), 'Customer managed');
  assert.equal(m.policyType('arn:aws:iam::123456789012:policy/aws/x'), 'Customer managed');
  assert.equal(m.policyType(''), 'Customer managed');
});

// A Map-backed stand-in for window.localStorage.
function memStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => void m.set(k, String(v)),
    removeItem: (k) => void m.delete(k),
    get length() {
      return m.size;
    },
    key: (i) => [...m.keys()][i] ?? null,
    size: () => m.size,
  };
}

test('terminal intents: only the Connect button\'s own, once, for the same target, recently', () => {
  const s = memStorage();
  const t = { instanceId: 'i-0123456789abcdef0', osUser: 'alice', port: '22' };
  const now = 1_700_000_000_000;
  const id = m.putIntent(s, t, now);
  assert.match(id, /^[0-9a-f]{32}$/);
  assert.equal(m.takeIntent(s, id, t, now + 1000), true);
  assert.equal(m.takeIntent(s, id, t, now + 1000), false, 'an intent is good once');
  // A link made elsewhere has no intent, or one that is not in storage.
  assert.equal(m.takeIntent(s, null, t, now), false);
  assert.equal(m.takeIntent(s, '', t, now), false);
  assert.equal(m.takeIntent(s, '0'.repeat(32), t, now), false);
  // An intent for another target does not open this one (and is spent).
  for (const other of [
    { ...t, instanceId: 'i-0fffffffffffffff0' },
    { ...t, osUser: 'root' },
    { ...t, port: '2222' },
    { ...t, port: '' },
  ]) {
    const x = m.putIntent(s, t, now);
    assert.equal(m.takeIntent(s, x, other, now), false, JSON.stringify(other));
    assert.equal(m.takeIntent(s, x, t, now), false, 'a mismatched take spends the intent');
  }
  // Too old, or from the future.
  const old = m.putIntent(s, t, now);
  assert.equal(m.takeIntent(s, old, t, now + m.INTENT_TTL_MS + 1), false);
  const fut = m.putIntent(s, t, now + 60_000);
  assert.equal(m.takeIntent(s, fut, t, now), false);
  // Stale intents (tabs that never opened) are cleaned up.
  m.putIntent(s, t, now);
  m.putIntent(s, t, now + 10 * m.INTENT_TTL_MS);
  assert.equal(s.size(), 1);
  // A forged value under a real-looking key is refused.
  s.setItem('kaginashi.terminalIntent.' + 'a'.repeat(32), 'not json');
  assert.equal(m.takeIntent(s, 'a'.repeat(32), t, now + 10 * m.INTENT_TTL_MS), false);
});
