import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import type { Config, DockerHost } from '../../platform';

/**
 * A dockerode client for one entry of DOCKER_HOSTS. tcp daemons use TLS with client
 * certificates when DOCKER_CERT_PATH is set: `<path>/<name>/{ca,cert,key}.pem` if that
 * directory exists, else `<path>/{ca,cert,key}.pem` for every host.
 */
export function dockerClient(host: DockerHost, config: Pick<Config, 'dockerCertPath'>): Docker {
  if (host.kind === 'default') return new Docker();
  if (host.kind === 'unix') return new Docker({ socketPath: host.socketPath });
  if (!config.dockerCertPath) return new Docker({ host: host.host, port: host.port, protocol: 'http' });
  const own = path.join(config.dockerCertPath, host.name);
  const dir = fs.existsSync(own) ? own : config.dockerCertPath;
  const read = (file: string) => fs.readFileSync(path.join(dir, file));
  return new Docker({ host: host.host, port: host.port, protocol: 'https', ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') });
}

/** Every daemon of the cluster's DOCKER_HOSTS, by name. */
export function dockerClients(config: Pick<Config, 'dockerHosts' | 'dockerCertPath'>): Array<{ name: string; docker: Docker }> {
  return config.dockerHosts.map((host) => ({ name: host.name, docker: dockerClient(host, config) }));
}
