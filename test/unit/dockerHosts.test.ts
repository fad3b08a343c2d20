import os from 'node:os';
import { dockerHostsProblem, parseDockerHosts } from '../../platform/dockerHosts';
import { loadConfig } from '../../platform/config';

describe('DOCKER_HOSTS', () => {
  it('is the local daemon when unset, named after this machine', () => {
    expect(parseDockerHosts('')).toEqual([{ name: os.hostname(), kind: 'default' }]);
  });

  it('takes unix sockets and tcp daemons, named or not', () => {
    expect(parseDockerHosts('unix:///run/a/docker.sock, b=tcp://10.0.0.2:2376')).toEqual([
      { name: 'a', kind: 'unix', socketPath: '/run/a/docker.sock' },
      { name: 'b', kind: 'tcp', host: '10.0.0.2', port: 2376 },
    ]);
    expect(parseDockerHosts('tcp://node-1.example:2376')).toEqual([{ name: 'node-1.example', kind: 'tcp', host: 'node-1.example', port: 2376 }]);
  });

  it('refuses what it cannot use, saying why', () => {
    expect(dockerHostsProblem('http://a:2375')).toMatch(/unix:\/\/ or tcp:\/\//);
    expect(dockerHostsProblem('tcp://a')).toMatch(/tcp:\/\/host:port/);
    expect(dockerHostsProblem('unix://relative.sock')).toMatch(/absolute/);
    expect(dockerHostsProblem('unix:///x/d/docker.sock,unix:///y/d/docker.sock')).toMatch(/twice/);
    expect(dockerHostsProblem('bad name=unix:///a.sock')).toMatch(/name/);
    expect(() => loadConfig({ DOCKER_HOSTS: 'ftp://x' })).toThrow(/DOCKER_HOSTS/);
  });

  it('refuses loopback service addresses when a daemon is on another machine', () => {
    const remote = { WORKER_RUNTIME: 'docker', DOCKER_HOSTS: 'a=unix:///var/run/docker.sock,b=tcp://10.0.0.2:2376' };
    expect(() => loadConfig(remote)).toThrow(/could not reach loopback addresses/);
    expect(() => loadConfig({ ...remote, AMQP_URL: 'amqp://u:secret@127.0.0.1' })).toThrow(/^(?![\s\S]*secret)/);
    expect(loadConfig({ ...remote, AMQP_URL: 'amqp://rmq:5672', ZK_HOSTS: 'zk-0:2181,zk-1:2181' }).dockerHosts).toHaveLength(2);
    // Two daemons on this machine (the multinode harness) share its loopback.
    expect(loadConfig({ WORKER_RUNTIME: 'docker', DOCKER_HOSTS: 'a=tcp://127.0.0.1:2376,b=unix:///b/docker.sock' }).dockerHosts).toHaveLength(2);
  });
});
