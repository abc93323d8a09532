import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VmrunError } from '../../errors.js';
import { isObject } from '../json.js';
import { DOCKER_HUB } from '../reference.js';

/** A username and password (or token) for one registry. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** Finds the credentials to use for a registry host (as written in references, e.g. `docker.io`). */
export type CredentialLookup = (registry: string) => RegistryCredentials | undefined;

/** The keys docker uses in config.json for a registry host. */
function configKeys(registry: string): string[] {
  if (registry === DOCKER_HUB) return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

function decodeEntry(entry: unknown, where: string): RegistryCredentials | undefined {
  if (!isObject(entry)) return undefined;
  if (typeof entry.username === 'string' && typeof entry.password === 'string') {
    return { username: entry.username, password: entry.password };
  }
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon < 0) throw new VmrunError('usage', `${where}: "auth" is not base64 of user:password`);
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  return undefined;
}

function parseAuths(text: string, where: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new VmrunError('usage', `${where}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(doc)) throw new VmrunError('usage', `${where}: expected a JSON object`);
  return isObject(doc.auths) ? doc.auths : doc;
}

/**
 * Loads registry credentials: `VMRUN_REGISTRY_AUTH` (JSON shaped like docker's
 * config.json `auths`, e.g. `{"127.0.0.1:5000":{"username":"u","password":"p"}}`)
 * overrides `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. Credential
 * helpers (credsStore) are not run.
 */
export async function loadCredentials(env: NodeJS.ProcessEnv = process.env): Promise<CredentialLookup> {
  const sources: { auths: Record<string, unknown>; where: string }[] = [];
  if (env.VMRUN_REGISTRY_AUTH) sources.push({ auths: parseAuths(env.VMRUN_REGISTRY_AUTH, 'VMRUN_REGISTRY_AUTH'), where: 'VMRUN_REGISTRY_AUTH' });
  const configPath = join(env.DOCKER_CONFIG ?? join(env.HOME || homedir(), '.docker'), 'config.json');
  const text = await readFile(configPath, 'utf8').catch(() => undefined);
  if (text !== undefined && text.length < 4 << 20) sources.push({ auths: parseAuths(text, configPath), where: configPath });
  return (registry) => {
    for (const { auths, where } of sources) {
      for (const key of configKeys(registry)) {
        const creds = decodeEntry(auths[key], `${where} entry "${key}"`);
        if (creds) return creds;
      }
    }
    return undefined;
  };
}
