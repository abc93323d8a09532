import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { VmrunError, isVmrunError } from '../../errors.js';
import { isDigest, sha256Digest, verifyBytes, type Digest } from '../digest.js';
import { Limits } from '../limits.js';
import { MANIFEST_ACCEPT } from '../media-types.js';
import { formatReference, isLoopbackHost, registryApiHost, type ImageReference } from '../reference.js';
import type { CredentialLookup, RegistryCredentials } from './credentials.js';
import { hopHint, refusedHop } from './hop-policy.js';
import { readBounded, registryErrorText } from './http-body.js';
import { parseWwwAuthenticate } from './www-authenticate.js';

/** How a RegistryClient connects. */
export interface RegistryClientOptions {
  /** Registry hosts (host[:port]) that may be reached over plain HTTP besides loopback. */
  insecureRegistries?: string[];
  credentials?: CredentialLookup;
  /** Attempts per request on 429/5xx/network errors (default 5). */
  maxAttempts?: number;
  /** First backoff delay in ms, doubled each retry (default 250). */
  retryBaseMs?: number;
  /** Per-request timeouts in ms (default 30 s for headers, 60 s between body bytes). */
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Parallel connections per origin (default 8). */
  connections?: number;
  /** An undici dispatcher to send requests through instead of the client's own pool (a proxy, or a test's resolver); closed with the client. */
  dispatcher?: Dispatcher;
}

/** A fetched manifest: its raw bytes, the registry's content type and its digest. */
export interface FetchedManifest {
  bytes: Buffer;
  contentType: string | undefined;
  digest: Digest;
}

interface Response {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { dump?: () => Promise<void> };
}

const MAX_REDIRECTS = 5;

/**
 * undici, loaded on the first request: it is a hundred-odd files, and most runs
 * (local images, images already pulled, warm starts) never talk to a registry.
 */
let undiciModule: Promise<typeof import('undici')> | undefined;
const undici = () => (undiciModule ??= import('undici'));

/**
 * A client for the OCI distribution API (pull side): manifests and blobs, with the
 * anonymous or credentialed bearer-token flow, basic auth, redirects to blob
 * storage (credentials are not forwarded to another origin), and retries with
 * backoff on 429 and 5xx.
 */
export class RegistryClient {
  private dispatcherInUse: Promise<Dispatcher> | undefined;
  private readonly authHeaders = new Map<string, string>();
  private readonly insecure: Set<string>;

  constructor(private readonly opts: RegistryClientOptions = {}) {
    this.insecure = new Set(opts.insecureRegistries ?? []);
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await (await this.dispatcherInUse)?.close();
  }

  /** The caller's dispatcher, or the client's own connection pool, made on first use. */
  private dispatcher(): Promise<Dispatcher> {
    const { opts } = this;
    this.dispatcherInUse ??= opts.dispatcher
      ? Promise.resolve(opts.dispatcher)
      : undici().then(({ Agent }) => new Agent({
        connections: opts.connections ?? 8,
        headersTimeout: opts.headersTimeoutMs ?? 30_000,
        bodyTimeout: opts.bodyTimeoutMs ?? 60_000,
        connect: { timeout: 15_000 },
      }));
    return this.dispatcherInUse;
  }

  /** One GET through the dispatcher. */
  private async get(url: string | URL, headers: Record<string, string>): Promise<Response> {
    const { request } = await undici();
    return (await request(url, { method: 'GET', headers, dispatcher: await this.dispatcher() })) as unknown as Response;
  }

  private allowsPlainHttp(host: string): boolean {
    return isLoopbackHost(host) || this.insecure.has(host);
  }

  private baseUrl(ref: ImageReference): string {
    const host = registryApiHost(ref);
    return `${this.allowsPlainHttp(ref.registry) ? 'http' : 'https'}://${host}/v2/${ref.repository}`;
  }

  /** Fetches the manifest (or index) for a tag or digest; a digest reference is verified. */
  async getManifest(ref: ImageReference, tagOrDigest: string = ref.digest ?? ref.tag ?? 'latest'): Promise<FetchedManifest> {
    const what = `manifest ${formatReference(ref)}${tagOrDigest !== (ref.digest ?? ref.tag) ? ` (${tagOrDigest})` : ''}`;
    const res = await this.send(ref, `${this.baseUrl(ref)}/manifests/${tagOrDigest}`, { accept: MANIFEST_ACCEPT }, what);
    const bytes = await readBounded(res.body, Limits.manifestBytes, what, 'image');
    const contentType = header(res.headers, 'content-type');
    let digest: Digest;
    if (isDigest(tagOrDigest)) {
      verifyBytes(bytes, tagOrDigest, what);
      digest = tagOrDigest;
    } else {
      digest = sha256Digest(bytes);
      const claimed = header(res.headers, 'docker-content-digest');
      if (claimed && claimed.startsWith('sha256:') && claimed !== digest) {
        throw new VmrunError('digest', `${what}: registry says its digest is ${claimed} but the content hashes to ${digest}`);
      }
    }
    return { bytes, contentType, digest };
  }

  /** Opens a blob for streaming from `offset` (HTTP Range); returns where the stream really starts. */
  async openBlob(ref: ImageReference, digest: Digest, offset = 0): Promise<{ stream: Readable; offset: number }> {
    const what = `blob ${digest} of ${formatReference(ref)}`;
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await this.send(ref, `${this.baseUrl(ref)}/blobs/${digest}`, headers, what);
    if (res.statusCode === 206) {
      const m = /^bytes (\d+)-/.exec(header(res.headers, 'content-range') ?? '');
      if (m && Number(m[1]) === offset) return { stream: res.body, offset };
      res.body.destroy();
      throw new VmrunError('registry', `${what}: registry answered a range request for byte ${offset} with Content-Range "${header(res.headers, 'content-range')}"`);
    }
    return { stream: res.body, offset: 0 };
  }

  /** One logical request: auth, redirects and retries; returns a 2xx response or throws. */
  private async send(ref: ImageReference, url: string, headers: Record<string, string>, what: string): Promise<Response> {
    const scope = `repository:${ref.repository}:pull`;
    const authKey = `${ref.registry}|${scope}`;
    let triedAuth = false;
    const maxAttempts = this.opts.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await this.follow(url, headers, this.authHeaders.get(authKey), what);
      } catch (e) {
        if (isVmrunError(e) || attempt >= maxAttempts) throw wrapNetworkError(e, what, ref);
        await this.backoff(attempt, undefined);
        continue;
      }
      if (res.statusCode >= 200 && res.statusCode < 300) return res;
      if (res.statusCode === 401 && !triedAuth) {
        triedAuth = true;
        const challenge = header(res.headers, 'www-authenticate');
        await res.body.dump?.().catch(() => {});
        this.authHeaders.set(authKey, await this.authenticate(ref, challenge, scope, what));
        continue;
      }
      const retriable = res.statusCode === 429 || res.statusCode >= 500;
      if (retriable && attempt < maxAttempts) {
        await res.body.dump?.().catch(() => {});
        await this.backoff(attempt, header(res.headers, 'retry-after'));
        continue;
      }
      const text = registryErrorText(await readBounded(res.body, 64 << 10, what).catch(() => Buffer.alloc(0)));
      throw statusError(res.statusCode, text, what, ref);
    }
  }

  /** Sends a GET, following redirects; credentials go only to the registry's own origin. */
  private async follow(url: string, headers: Record<string, string>, auth: string | undefined, what: string): Promise<Response> {
    const origin = new URL(url).origin;
    let current = url;
    let previous = new URL(url);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const target = new URL(current);
      const refused = refusedHop(previous, target, this.insecure);
      if (refused) {
        throw new VmrunError('registry', `${what}: refusing to follow a redirect to ${target.protocol}//${target.host} (${refused}; ${hopHint(target)})`);
      }
      previous = target;
      const h: Record<string, string> = { 'user-agent': 'vmrun/0.1', ...headers };
      if (auth && target.origin === origin) h.authorization = auth;
      const res = await this.get(current, h);
      if ([301, 302, 303, 307, 308].includes(res.statusCode)) {
        const location = header(res.headers, 'location');
        await res.body.dump?.().catch(() => {});
        if (!location) throw new VmrunError('registry', `${what}: redirect without a Location header`);
        current = new URL(location, current).toString();
        continue;
      }
      return res;
    }
    throw new VmrunError('registry', `${what}: more than ${MAX_REDIRECTS} redirects`);
  }

  /** Answers a 401 challenge: a bearer token from the realm, or basic credentials. */
  private async authenticate(ref: ImageReference, challengeHeader: string | undefined, scope: string, what: string): Promise<string> {
    const creds = this.opts.credentials?.(ref.registry);
    if (!challengeHeader) throw authError(ref, what, creds, 'the registry sent 401 without a WWW-Authenticate challenge');
    const challenges = parseWwwAuthenticate(challengeHeader, ref.registry);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) return `Bearer ${await this.fetchToken(ref, bearer.params, scope, creds, what)}`;
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!creds) throw authError(ref, what, creds, 'the registry requires a username and password');
      return basicAuth(creds);
    }
    throw authError(ref, what, creds, `unsupported auth scheme(s): ${challenges.map((c) => c.scheme).join(', ')}`);
  }

  private async fetchToken(ref: ImageReference, params: Record<string, string>, scope: string, creds: RegistryCredentials | undefined, what: string): Promise<string> {
    const realm = params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new VmrunError('registry', `registry ${ref.registry}: bearer challenge has no valid realm URL ("${realm}")`);
    }
    const refused = refusedHop(new URL(this.baseUrl(ref)), url, this.insecure);
    if (refused) {
      throw new VmrunError('registry', `registry ${ref.registry}: refusing token realm ${url.origin} (${refused}; ${hopHint(url)})`);
    }
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? scope);
    const headers: Record<string, string> = { 'user-agent': 'vmrun/0.1' };
    if (creds) headers.authorization = basicAuth(creds);
    let res: Response;
    try {
      res = await this.get(url, headers);
    } catch (e) {
      throw wrapNetworkError(e, `token request to ${url.origin}`, ref);
    }
    const body = await readBounded(res.body, Limits.tokenResponseBytes, `token from ${url.origin}`);
    if (res.statusCode === 401 || res.statusCode === 403) throw authError(ref, what, creds, `the token service refused (HTTP ${res.statusCode}: ${registryErrorText(body)})`);
    if (res.statusCode !== 200) throw new VmrunError('registry', `registry ${ref.registry}: token service ${url.origin} answered HTTP ${res.statusCode}: ${registryErrorText(body)}`);
    let token: unknown;
    try {
      const doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      token = doc.token ?? doc.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token.length === 0 || token.length > 64 << 10 || /[\r\n]/.test(token)) {
      throw new VmrunError('registry', `registry ${ref.registry}: token service ${url.origin} returned no usable token`);
    }
    return token;
  }

  private async backoff(attempt: number, retryAfter: string | undefined): Promise<void> {
    const base = this.opts.retryBaseMs ?? 250;
    let ms = Math.min(base * 2 ** (attempt - 1), 8_000);
    const seconds = Number(retryAfter);
    if (retryAfter && Number.isFinite(seconds) && seconds >= 0) ms = Math.min(seconds * 1000, 30_000);
    await sleep(ms * (0.75 + Math.random() * 0.5));
  }
}

function header(headers: Response['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function basicAuth(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

function authError(ref: ImageReference, what: string, creds: RegistryCredentials | undefined, why: string): VmrunError {
  const hint = creds
    ? `check the credentials for ${ref.registry} (user "${creds.username}")`
    : `log in with docker login or set VMRUN_REGISTRY_AUTH='{"${ref.registry}":{"username":"...","password":"..."}}'`;
  return new VmrunError('registry', `${what}: authentication failed: ${why}; ${hint}`);
}

function statusError(status: number, text: string, what: string, ref: ImageReference): VmrunError {
  if (status === 401 || status === 403) return authError(ref, what, undefined, `HTTP ${status}${text ? ` (${text})` : ''}`);
  if (status === 404) return new VmrunError('not-found', `${what}: not found in registry ${ref.registry}${text ? ` (${text})` : ''}`);
  return new VmrunError('registry', `${what}: registry ${ref.registry} answered HTTP ${status}${text ? `: ${text}` : ''}`);
}

function wrapNetworkError(e: unknown, what: string, ref: ImageReference): VmrunError {
  if (isVmrunError(e)) return e;
  const err = e as { code?: string; message?: string };
  return new VmrunError('registry', `${what}: cannot reach registry ${ref.registry}: ${err.code ?? ''} ${err.message ?? String(e)}`.trim(), { cause: e });
}
