import { isLoopbackHost } from '../reference.js';

/**
 * Why vmrun must not follow a registry from `from` (the registry itself, or the
 * previous redirect) to `to`, or undefined if it may. A registry is not trusted to
 * choose where vmrun connects: a redirect or token realm may not downgrade https to
 * plain http, nor lead from a remote host to a loopback one (a local service the
 * registry could otherwise make vmrun query), unless the user named the target with
 * --insecure-registry. Plain http is otherwise only for loopback.
 */
export function refusedHop(from: URL, to: URL, insecure: ReadonlySet<string>): string | undefined {
  if (to.protocol !== 'https:' && to.protocol !== 'http:') return `${to.protocol} is not http(s)`;
  if (insecure.has(to.host)) return undefined;
  if (from.protocol === 'https:' && to.protocol === 'http:') return 'a downgrade from https to plain http';
  if (isLoopbackHost(to.host) && !isLoopbackHost(from.host)) return 'a hop from a remote host to loopback';
  if (to.protocol === 'http:' && !isLoopbackHost(to.host)) return 'plain http to a host that is not loopback';
  return undefined;
}

/** The hint that ends a refusal: how a user who means it allows the hop. */
export function hopHint(to: URL): string {
  return `allowed only if --insecure-registry names ${to.host}`;
}
