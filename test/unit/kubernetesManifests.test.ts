import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadConfig, SETTING_NAMES } from '../../platform/config';

// compose/kubernetes/ cannot run here (no Kubernetes on this machine); what can be checked
// is that the files parse, pass only settings ridedb knows, and agree with each other.
const DIR = path.resolve(__dirname, '../../compose/kubernetes');

interface Manifest {
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
}
type EnvVar = { name: string; value?: string; valueFrom?: unknown };

const manifests = (): Manifest[] =>
  fs
    .readdirSync(DIR)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      parseAllDocuments(fs.readFileSync(path.join(DIR, f), 'utf8')).map((d) => {
        if (d.errors.length) throw new Error(`${f}: ${d.errors[0].message}`);
        return d.toJS() as Manifest;
      }),
    );

const gatewayEnv = (): EnvVar[] => {
  const deployment = manifests().find((m) => m.kind === 'Deployment' && m.metadata.name === 'ridedb-gateway');
  const containers = (deployment?.spec as { template: { spec: { containers: Array<{ env: EnvVar[] }> } } } | undefined)?.template.spec.containers;
  if (!containers?.length) throw new Error('no ridedb-gateway Deployment');
  return containers[0].env;
};

describe('compose/kubernetes', () => {
  it('parses, every document with a kind and a name', () => {
    const all = manifests();
    expect(all.map((m) => m.kind).sort()).toEqual(
      ['Deployment', 'PodDisruptionBudget', 'PodDisruptionBudget', 'RabbitmqCluster', 'Service', 'Service', 'Service', 'StatefulSet', 'StatefulSet'].sort(),
    );
    for (const m of all) expect(m.metadata.name).toMatch(/^[a-z0-9-]+$/);
  });

  it("passes the gateway only settings ridedb reads, with values ridedb's configuration accepts", () => {
    const env = gatewayEnv();
    const literal = Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
    for (const { name } of env) expect({ name, known: SETTING_NAMES.includes(name) }).toEqual({ name, known: true });
    // Secrets stand in for the values kept out of the file.
    expect(() =>
      loadConfig({ ...literal, DBAAS_ADMIN_TOKEN: 'x', AMQP_URL: 'amqp://u:p@ridedb-rabbitmq:5672', DATABASE_URL: 'postgres://postgres@ridedb-postgres/postgres' }),
    ).not.toThrow();
  });

  it('names the three ZooKeeper servers the StatefulSet runs, and the services the secrets point at', () => {
    const zk = manifests().find((m) => m.kind === 'StatefulSet' && m.metadata.name === 'zk');
    expect((zk?.spec as { replicas: number }).replicas).toBe(3);
    const hosts = gatewayEnv().find((e) => e.name === 'ZK_HOSTS')?.value ?? '';
    expect(hosts.split(',')).toEqual(['zk-0.zk-hs:2181', 'zk-1.zk-hs:2181', 'zk-2.zk-hs:2181']);
    const names = manifests().map((m) => m.metadata.name);
    expect(names).toEqual(expect.arrayContaining(['zk-hs', 'ridedb-rabbitmq', 'ridedb-postgres', 'ridedb']));
  });
});
