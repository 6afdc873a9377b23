// Terminal intents: proof that a terminal tab was opened by this console's
// own Connect button, not by a link from elsewhere.
//
// Why: the terminal page connects as soon as it loads — it pushes a key as
// the signed-in user and opens an SSH session. Its URL names the instance,
// the OS user and the port, so any web page could link or redirect a
// signed-in user to it and have their browser connect where the page
// chose (a host the attacker controls, shown as the user's own session,
// recorded and audited under their name). The session cookie is
// SameSite=Strict, but that stops only the navigation's own request: the
// page's later requests are same-site and carry it.
//
// The Connect button stores an intent in localStorage (shared with the
// new tab, which noopener does not cut off; no other site can write it)
// and passes its random ID in the URL; the terminal page takes it (once)
// and connects only if it matches. Without one it asks first.

export interface TerminalTarget {
  instanceId: string;
  osUser: string;
  port: string; // '' for the default
}

/** How long an intent waits for its tab. */
export const INTENT_TTL_MS = 2 * 60 * 1000;

const PREFIX = 'kaginashi.terminalIntent.';

/** The storage intents live in (window.localStorage; a stand-in in tests). */
export interface IntentStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  readonly length: number;
  key(index: number): string | null;
}

function randomId(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Records an intent to open t; returns its ID for the URL's intent parameter. */
export function putIntent(store: IntentStorage, t: TerminalTarget, now = Date.now()): string {
  dropStale(store, now);
  const id = randomId();
  store.setItem(PREFIX + id, JSON.stringify({ instanceId: t.instanceId, osUser: t.osUser, port: t.port, at: now }));
  return id;
}

/**
 * Takes the intent id (it cannot be used again) and says whether it was
 * made by this console, recently, for exactly t.
 */
export function takeIntent(store: IntentStorage, id: string | null, t: TerminalTarget, now = Date.now()): boolean {
  dropStale(store, now);
  if (!id || !/^[0-9a-f]{32}$/.test(id)) return false;
  const raw = store.getItem(PREFIX + id);
  if (raw === null) return false;
  store.removeItem(PREFIX + id);
  let v: any;
  try {
    v = JSON.parse(raw);
  } catch {
    return false;
  }
  return (
    v?.instanceId === t.instanceId &&
    v?.osUser === t.osUser &&
    String(v?.port ?? '') === t.port &&
    typeof v?.at === 'number' &&
    now - v.at >= 0 &&
    now - v.at <= INTENT_TTL_MS
  );
}

/** Removes intents older than INTENT_TTL_MS (tabs that never opened). */
function dropStale(store: IntentStorage, now: number): void {
  const stale: string[] = [];
  for (let i = 0; i < store.length; i++) {
    const k = store.key(i);
    if (!k || !k.startsWith(PREFIX)) continue;
    let at = NaN;
    try {
      at = JSON.parse(store.getItem(k) ?? '')?.at;
    } catch {
      /* unreadable: stale */
    }
    if (!(typeof at === 'number' && now - at >= 0 && now - at <= INTENT_TTL_MS)) stale.push(k);
  }
  for (const k of stale) store.removeItem(k);
}

/** window.localStorage, or null where it is unavailable (then every link asks). */
export function browserStorage(): IntentStorage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}
