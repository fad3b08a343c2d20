// What a gateway on the process runtime loads: none of these may load dockerode.
import '../../gateway/server';
import '../../gateway/orchestrator';
import '../../gateway/runtimes';
import '../../gateway/workerStorage';
import { dockerClient } from '../../gateway/runtimes/dockerClient';
import { parseDockerHosts } from '../../platform/dockerHosts';

// Counts loads of dockerode (on globalThis: the imports above run before this file's own variables exist); the module itself is the real one.
const loads = globalThis as { dockerodeLoads?: number };
jest.mock('dockerode', () => {
  const counter = globalThis as { dockerodeLoads?: number };
  counter.dockerodeLoads = (counter.dockerodeLoads ?? 0) + 1;
  return jest.requireActual<object>('dockerode');
});

describe('dockerode', () => {
  it('is loaded by the gateway only when it talks to a Docker daemon (~22 MB of resident memory otherwise spent for nothing)', () => {
    expect(loads.dockerodeLoads ?? 0).toBe(0);
    const [host] = parseDockerHosts('unix:///var/run/docker.sock');
    expect(dockerClient(host, { dockerCertPath: null }).modem).toBeDefined();
    expect(loads.dockerodeLoads).toBe(1);
  });
});
