import os from 'node:os';

/**
 * The Docker daemons the docker runtime places workers on. `DOCKER_HOSTS` lists them,
 * comma-separated, each `[name=]unix:///path/docker.sock` or `[name=]tcp://host:port`;
 * empty means the local daemon as the Docker CLI finds it (DOCKER_HOST or the default
 * socket). The name is what `workers` shows as a worker's host; by default the socket's
 * directory name or the tcp host. tcp daemons are spoken to over TLS with client
 * certificates when DOCKER_CERT_PATH is set (as the Docker CLI does).
 */
export type DockerHost = { name: string; kind: 'default' } | { name: string; kind: 'unix'; socketPath: string } | { name: string; kind: 'tcp'; host: string; port: number };

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

function parseEntry(entry: string): DockerHost | string {
  const eq = entry.indexOf('=');
  const named = eq > 0 && !entry.slice(0, eq).includes(':');
  const name = named ? entry.slice(0, eq) : null;
  const address = named ? entry.slice(eq + 1) : entry;
  if (name !== null && !NAME.test(name)) return `DOCKER_HOSTS name "${name}" must be letters, digits, _ . - (max 63)`;
  if (address.startsWith('unix://')) {
    const socketPath = address.slice('unix://'.length);
    if (!socketPath.startsWith('/')) return `DOCKER_HOSTS entry ${address} must be unix:///absolute/path`;
    const parts = socketPath.split('/').filter(Boolean);
    return { name: name ?? parts[parts.length - 2] ?? 'local', kind: 'unix', socketPath };
  }
  if (address.startsWith('tcp://')) {
    const url = URL.canParse(address.replace(/^tcp:/, 'http:')) ? new URL(address.replace(/^tcp:/, 'http:')) : null;
    if (!url || !url.hostname || !url.port || url.pathname !== '/') return `DOCKER_HOSTS entry ${address} must be tcp://host:port`;
    return { name: name ?? url.hostname, kind: 'tcp', host: url.hostname, port: Number(url.port) };
  }
  return `DOCKER_HOSTS entry ${address} must start with unix:// or tcp://`;
}

function parse(value: string): DockerHost[] | string {
  const entries = value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (!entries.length) return [{ name: os.hostname(), kind: 'default' }];
  const hosts: DockerHost[] = [];
  for (const entry of entries) {
    const host = parseEntry(entry);
    if (typeof host === 'string') return host;
    if (hosts.some((h) => h.name === host.name)) return `DOCKER_HOSTS names ${host.name} twice: give each entry a name (name=unix://…)`;
    hosts.push(host);
  }
  return hosts;
}

/** What is wrong with a `DOCKER_HOSTS` value, or null. */
export function dockerHostsProblem(value: string): string | null {
  const hosts = parse(value);
  return typeof hosts === 'string' ? hosts : null;
}

export function parseDockerHosts(value: string): DockerHost[] {
  const hosts = parse(value);
  if (typeof hosts === 'string') throw new Error(hosts);
  return hosts;
}

const isLoopback = (host: string) => /^(127\.|localhost$|::1$|\[::1\]$)/.test(host);

/** True when a daemon of the list runs on another machine (a tcp address that is not loopback). */
export function hasRemoteDockerHost(hosts: readonly DockerHost[]): boolean {
  return hosts.some((h) => h.kind === 'tcp' && !isLoopback(h.host));
}

/** The loopback addresses among a list of `host:port` or URLs, which a worker on another machine could not reach. */
export function loopbackAddresses(addresses: readonly string[]): string[] {
  return addresses.filter((a) => {
    const host = URL.canParse(a) ? new URL(a).hostname : a.replace(/\/.*$/, '').replace(/:\d+$/, '');
    return isLoopback(host);
  });
}
