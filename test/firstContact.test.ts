import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { TestCluster } from './support/cluster';

const TEARDOWN = path.resolve(__dirname, '../dist/gateway/teardown.js');
const run = promisify(execFile);

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ READ_TIMEOUT_MS: '1500' });
});
afterAll(async () => {
  await cluster?.stop();
});

describe('what a new user meets', () => {
  it('npm start prints the explorer URL on a line of its own, and it serves the explorer', async () => {
    const log = fs.readFileSync(cluster.logFile, 'utf8');
    const line = log.split('\n').find((l) => l.startsWith('ridedb explorer:'));
    expect(line).toBe(`ridedb explorer: http://localhost:${cluster.config.port}/`);
    const page = await fetch(line!.slice('ridedb explorer: '.length));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('a read that waits in vain for a seq reports the whole wait, READ_TIMEOUT_MS, not the last slice', async () => {
    const started = Date.now();
    // Ahead of the log (a fresh cluster's is near 0), within what the gateway lets a client wait for.
    const res = await cluster.gql('{ users { username } }', {}, { 'x-dbaas-min-seq': '5000' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
    expect(res.errors?.[0]?.message).toMatch(/^no slave reached seq 5000 within 1500 ms/);
  });

  it('cluster:destroy refuses while the cluster has a running gateway, and removes it once that gateway stopped', async () => {
    const env = { ...process.env, DBAAS_CLUSTER: cluster.config.cluster };
    const refused = run(process.execPath, [TEARDOWN], { env });
    await expect(refused).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(new RegExp(`running gateway: g[0-9a-f]+ \\(pid ${cluster.gateway.pid} .*--force`)),
    });
    // The refusal removed nothing: the cluster still serves.
    await cluster.data('{ users { username } }');

    const exited = new Promise((resolve) => cluster.gateway.once('exit', resolve));
    cluster.gateway.kill('SIGTERM');
    await exited;
    const removed = await run(process.execPath, [TEARDOWN], { env });
    expect(removed.stdout).toMatch(new RegExp(`cluster ${cluster.config.cluster} removed`));
  });
});
