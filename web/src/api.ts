// The console's only way to the server: the JSON endpoints of
// docs/CONSOLE-API.md. Every state-changing request carries the session's
// CSRF token; the session cookie itself is HttpOnly and never seen here.

export interface Session {
  accountId: string;
  userName: string;
  arn: string;
  root: boolean;
  mfa: boolean;
  csrfToken: string;
  expiresAt: string;
  idleExpiresAt: string;
  region: string;
}

export interface Finding {
  findingType?: string;
  type?: string;
  code: string;
  message: string;
  path?: string;
  line?: number;
  column?: number;
  learnMoreLink?: string;
}

/** An error answer of the console API, or a network failure (code "NetworkError"). */
export class ApiError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
    public readonly findings: Finding[] = [],
    public readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface Instance {
  instanceId: string;
  name?: string;
  state: string;
  /** The agent holds a connection to the server now. */
  connected?: boolean;
  osId?: string;
  osVersion?: string;
  osPrettyName?: string;
  defaultUser?: string;
  defaultUserExists?: boolean;
  privateIp?: string;
  ipv6?: string[] | string;
  agentVersion?: string;
  lastSeen?: string;
  launchTime?: string;
  tags?: Record<string, string>;
  /** The host's sshd port, when the server reports one (else 22). */
  sshPort?: number;
  /**
   * Why logins with pushed keys fail on the host, as its connected agent
   * reports it (plain text from the host: shown as text, never as HTML).
   */
  signingKeyProblem?: string;
}

export interface Recording {
  id: string;
  userName: string;
  instanceId: string;
  osUser: string;
  startTime: string;
  endTime?: string;
  bytes?: number;
  durationSeconds?: number;
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The client for one browser tab. onSignedOut runs when the server says the session is gone. */
export class Api {
  session: Session | null = null;
  onSignedOut: () => void = () => {};

  private async request<T>(method: string, path: string, body?: unknown, opts: { signin?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && method !== 'HEAD' && this.session) headers['X-CSRF-Token'] = this.session.csrfToken;
    let resp: Response;
    try {
      resp = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'NetworkError', `The server cannot be reached (${(e as Error).message}).`);
    }
    if (resp.status === 204) return undefined as T;
    const text = await resp.text();
    let data: any = undefined;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        if (!resp.ok) throw new ApiError(resp.status, `HTTP${resp.status}`, text.slice(0, 300));
        return text as T;
      }
    }
    if (!resp.ok) {
      const e = data?.error ?? {};
      const err = new ApiError(resp.status, e.code ?? `HTTP${resp.status}`, e.message ?? resp.statusText, e.findings ?? [], e.retryAfterSeconds);
      // A session that ended (idle or absolute timeout, sign-out in another
      // tab) sends the user back to the sign-in page, except from sign-in itself.
      if (resp.status === 401 && !opts.signin && (err.code === 'SessionExpired' || err.code === 'NotSignedIn' || err.code === 'Unauthenticated' || this.session)) {
        this.session = null;
        this.onSignedOut();
      }
      throw err;
    }
    return data as T;
  }

  async loadSession(): Promise<Session | null> {
    try {
      this.session = await this.request<Session>('GET', '/console/api/session', undefined, { signin: true });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) this.session = null;
      else throw e;
    }
    return this.session;
  }

  async signIn(accountId: string, userName: string, password: string, mfaCode?: string): Promise<Session> {
    const body: Record<string, string> = { accountId, userName, password };
    if (mfaCode) body.mfaCode = mfaCode;
    this.session = await this.request<Session>('POST', '/console/api/signin', body, { signin: true });
    return this.session;
  }

  async signOut(): Promise<void> {
    try {
      await this.request('POST', '/console/api/signout', {}, { signin: true });
    } finally {
      this.session = null;
    }
  }

  /** One AWS action through the same path as the API (authorization, audit). */
  async aws<T = any>(service: string, action: string, params: Record<string, unknown> = {}): Promise<T> {
    const r = await this.request<{ result: T }>('POST', '/console/api/aws', { service, action, params });
    return (r?.result ?? {}) as T;
  }

  validatePolicy(document: string): Promise<{ findings: Finding[] }> {
    return this.request('POST', '/console/api/validate-policy', { document });
  }

  instances(): Promise<{ instances: Instance[] }> {
    return this.request('GET', '/console/api/instances');
  }

  recordings(q: { user?: string; instanceId?: string; from?: string; to?: string } = {}): Promise<{ recordings: Recording[] }> {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v) p.set(k, v);
    const qs = p.toString();
    return this.request('GET', '/console/api/recordings' + (qs ? '?' + qs : ''));
  }

  async recording(id: string): Promise<string> {
    const resp = await fetch('/console/api/recordings/' + encodeURIComponent(id), { credentials: 'same-origin', cache: 'no-store' });
    const text = await resp.text();
    if (!resp.ok) {
      let code = `HTTP${resp.status}`;
      let message = text.slice(0, 300);
      try {
        const e = JSON.parse(text).error;
        code = e.code ?? code;
        message = e.message ?? message;
      } catch {
        /* not JSON: keep the text */
      }
      throw new ApiError(resp.status, code, message);
    }
    return text;
  }
}

/** A readable one-line description of any error, for the page. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}
