import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { destroyCluster } from '../gateway/teardown';
import { loadConfig } from '../platform';
import { freePort, sleep, uniqueClusterName, waitUntil } from './support/cluster';
import { PrivateZookeeper, signal } from './support/privateZookeeper';

const ROOT = path.resolve(__dirname, '..');

/**
 * This test runs `npm start`, whose bootstrap rebuilds dist/ (rm -rf, then tsc) when a
 * source is newer than the last build, and reinstalls node_modules when the lock file
 * changed: under other tests running from the same tree that would pull their binaries
 * away. `npm test` bootstraps first, so there it never happens; elsewhere say what to run.
 */
function bootstrapWouldRebuild(): string | null {
  const stamp = path.join(ROOT, 'dist/.build-stamp');
  if (!fs.existsSync(stamp)) return 'dist/ was not built by bootstrap';
  const sources = fs
    .readFileSync(path.join(ROOT, 'scripts/build-sources'), 'utf8')
    .split('\n')
    .filter((line) => line && !line.startsWith('#'));
  const newer = execFileSync('find', [...sources, '-newer', stamp, '-print', '-quit'], {
    cwd: ROOT,
    encoding: 'utf8',
  }).trim();
  if (newer) return `${newer} is newer than the last bootstrap build`;
  const installed = path.join(ROOT, 'node_modules/.package-lock.json');
  if (!fs.existsSync(installed) || fs.statSync(path.join(ROOT, 'package-lock.json')).mtimeMs > fs.statSync(installed).mtimeMs)
    return 'node_modules is older than package-lock.json';
  return null;
}

let zk: PrivateZookeeper;
let npmStart: ChildProcess | undefined;
let env: Record<string, string>;
let logFile: string;

beforeAll(async () => {
  zk = await PrivateZookeeper.prepare();
  const cluster = uniqueClusterName();
  logFile = path.join(os.tmpdir(), `ridedb-${cluster}-npm-start.log`);
  const { NODE_ENV: _jestSetsThis, ...userEnv } = process.env as Record<string, string>;
  env = {
    ...userEnv,
    DBAAS_CLUSTER: cluster,
    PORT: String(await freePort()),
    DBAAS_ADMIN_TOKEN: randomBytes(16).toString('hex'),
    // Nothing answers here yet, so bootstrap starts a ZooKeeper, with this private config.
    ZK_HOSTS: zk.hosts,
    ZK_CONFIG: zk.configFile,
    // zkServer.sh names its console file /var/log/zookeeper/zookeeper-$USER-server-*.out:
    // a user of its own keeps it off the shared ZooKeeper's file.
    USER: `ridedb_${cluster}`,
  };
});

afterAll(async () => {
  if (npmStart?.pid && npmStart.exitCode === null) signal(-npmStart.pid, 'SIGKILL');
  if (!zk) return;
  // The cluster's znodes live in the private ZooKeeper; teardown needs it up.
  if (!(await zk.answers())) await zk.start();
  await destroyCluster(loadConfig(env), { force: true });
  await zk.remove();
  if (fs.existsSync('/var/log/zookeeper'))
    for (const file of fs.readdirSync('/var/log/zookeeper').filter((f) => f.startsWith(`zookeeper-${env.USER}-`))) fs.rmSync(path.join('/var/log/zookeeper', file));
});

describe('services started by npm start', () => {
  it("keep running when npm start's whole process group is stopped (Ctrl-C, then SIGTERM)", async () => {
    const stale = bootstrapWouldRebuild();
    if (stale) throw new Error(`${stale}: run \`npm run bootstrap\` first (this test runs npm start, which would rebuild under other tests)`);

    const out = fs.openSync(logFile, 'w');
    // A process group of its own, as a terminal gives `npm start`.
    npmStart = spawn('npm', ['start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const exited = new Promise((resolve) => npmStart!.once('exit', resolve));
    const group = npmStart.pid!;

    await waitUntil(
      `npm start to start ZooKeeper and a healthy gateway (log: ${logFile})`,
      async () => {
        if (npmStart!.exitCode !== null) throw new Error(`npm start exited (${npmStart!.exitCode}); see ${logFile}`);
        return (await zk.answers()) && (await fetch(`http://127.0.0.1:${env.PORT}/healthz`)).status === 200;
      },
      180_000,
    );
    const zkPid = zk.pid();
    expect(zkPid).not.toBeNull();

    signal(-group, 'SIGINT'); // Ctrl-C in the terminal
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 30_000)))]);
    clearTimeout(timer);
    expect(npmStart.exitCode ?? npmStart.signalCode).not.toBeNull();
    signal(-group, 'SIGTERM'); // and whatever else is left in the group
    await sleep(2000);

    expect(signal(zkPid!, 0)).toBe(true);
    expect(await zk.answers()).toBe(true);
  });
});
