import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import type { Config, DockerHost } from '../../platform';

/**
 * dockerode, loaded on first use: with ssh2 and its WebAssembly it adds ~22 MB to the
 * resident memory of every process that loads it, and a gateway on the process runtime
 * never talks to Docker.
 */
function dockerode(): typeof Docker {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy load, see above
  return require('dockerode') as typeof Docker;
}

/**
 * A dockerode client for one entry of DOCKER_HOSTS. tcp daemons use TLS with client
 * certificates when DOCKER_CERT_PATH is set: `<path>/<name>/{ca,cert,key}.pem` if that
 * directory exists, else `<path>/{ca,cert,key}.pem` for every host.
 */
export function dockerClient(host: DockerHost, config: Pick<Config, 'dockerCertPath'>): Docker {
  const Docker = dockerode();
  if (host.kind === 'default') return new Docker();
  if (host.kind === 'unix') return new Docker({ socketPath: host.socketPath });
  const dir = certDirectory(host, config);
  if (!dir) return new Docker({ host: host.host, port: host.port, protocol: 'http' });
  const read = (file: string) => fs.readFileSync(path.join(dir, file));
  return new Docker({ host: host.host, port: host.port, protocol: 'https', ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') });
}

/** Where a host's ca.pem, cert.pem and key.pem are: `<DOCKER_CERT_PATH>/<name>/` if it exists, else DOCKER_CERT_PATH; null without one. */
export function certDirectory(host: DockerHost, config: Pick<Config, 'dockerCertPath'>): string | null {
  if (!config.dockerCertPath) return null;
  const own = path.join(config.dockerCertPath, host.name);
  return fs.existsSync(own) ? own : config.dockerCertPath;
}

/** Every daemon of the cluster's DOCKER_HOSTS, by name. */
export function dockerClients(config: Pick<Config, 'dockerHosts' | 'dockerCertPath'>): Array<{ name: string; docker: Docker }> {
  return config.dockerHosts.map((host) => ({ name: host.name, docker: dockerClient(host, config) }));
}
