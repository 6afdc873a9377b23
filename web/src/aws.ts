// Reading AWS action results as the console API returns them. The contract
// says results use AWS member names; these helpers also accept the Go field
// spellings (ARN for Arn, UserID for UserId) and XML-style list wrappers
// ({"member": [...]}) so that a small difference in the server's JSON does
// not blank a page.

export type Obj = Record<string, any>;

/** The first of names present in o (case-insensitive). */
export function get(o: unknown, ...names: string[]): any {
  if (!o || typeof o !== 'object') return undefined;
  const rec = o as Obj;
  for (const n of names) if (rec[n] !== undefined) return rec[n];
  const lower = new Map(Object.keys(rec).map((k) => [k.toLowerCase(), k]));
  for (const n of names) {
    const k = lower.get(n.toLowerCase());
    if (k !== undefined && rec[k] !== undefined) return rec[k];
  }
  return undefined;
}

export function str(o: unknown, ...names: string[]): string {
  const v = get(o, ...names);
  return v === undefined || v === null ? '' : String(v);
}

/** A list, unwrapping {member: [...]} / {item: [...]} and single members. */
export function list(v: unknown): Obj[] {
  if (v === undefined || v === null || v === '') return [];
  if (Array.isArray(v)) return v;
  if (typeof v === 'object') {
    const inner = get(v, 'member', 'item', 'Member', 'Item');
    if (inner !== undefined) return list(inner);
    return [v as Obj];
  }
  return [];
}

export function listOf(o: unknown, ...names: string[]): Obj[] {
  return list(get(o, ...names));
}

/** Tags as a map, from [{Key,Value}] or {k: v}. */
export function tagMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object' && !Array.isArray(v) && get(v, 'member', 'item') === undefined) {
    for (const [k, val] of Object.entries(v as Obj)) out[k] = String(val);
    return out;
  }
  for (const t of list(v)) out[str(t, 'Key')] = str(t, 'Value');
  return out;
}

/** Tags as AWS Query parameters: Tags.member.N.Key / .Value. */
export function tagParams(tags: [string, string][], prefix = 'Tags.member'): Record<string, string> {
  const p: Record<string, string> = {};
  tags.forEach(([k, v], i) => {
    p[`${prefix}.${i + 1}.Key`] = k;
    p[`${prefix}.${i + 1}.Value`] = v;
  });
  return p;
}

/** Members of a Query list parameter: Name.member.N. */
export function memberParams(name: string, values: string[]): Record<string, string> {
  const p: Record<string, string> = {};
  values.forEach((v, i) => (p[`${name}.member.${i + 1}`] = v));
  return p;
}

/** IAM returns policy documents URL-encoded (RFC 3986); decode when it is. */
export function policyDocument(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return JSON.stringify(v, null, 2);
  let s = String(v);
  if (/^%7B/i.test(s.trim()) || (!s.trim().startsWith('{') && s.includes('%'))) {
    try {
      s = decodeURIComponent(s);
    } catch {
      /* leave it */
    }
  }
  try {
    return JSON.stringify(JSON.parse(s), null, 2);
  } catch {
    return s;
  }
}
