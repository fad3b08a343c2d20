import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { clusterNames } from '../../schema';
import { loadConfig, workerEnvironment, type Config } from '../../platform';
import { destroyCluster } from '../../gateway/teardown';
import { GATEWAY_NODE_FLAGS, NODE_PROCESS_ENV } from '../../gateway/nodeFlags';
import { workerDatabaseUrl } from './workerStorage';

/** The repository root, whether this runs from source (jest) or from dist/ (benchmarks). */
function findRoot(dir: string): string {
  return fs.existsSync(path.join(dir, 'package.json')) ? dir : findRoot(path.dirname(dir));
}
const ROOT = findRoot(__dirname);
export const GATEWAY_ENTRY = path.join(ROOT, 'dist/gateway/main.js');
export const WORKER_ENTRY = path.join(ROOT, 'dist/worker/main.js');

export interface GqlResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  data: T | null;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
  extensions?: { dbaas?: { seq: number | null; workerId: string | null; workers: string[]; plan?: string; cached?: boolean } };
}

export interface WorkerInfo {
  id: string;
  pid: number;
  role: 'MASTER' | 'SLAVE' | 'STARTING';
  appliedSeq: number;
  host: string | null;
}

export function uniqueClusterName(): string {
  return `t_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}` : ''}`);
}

/** A whole ridedb cluster in its own namespace, started as a user would: the gateway binary. */
export class TestCluster {
  readonly url: string;
  readonly names;
  gateway: ChildProcess;
  private exited: Promise<void>;

  private constructor(
    readonly config: Config,
    private readonly env: Record<string, string>,
    readonly logFile: string,
  ) {
    this.url = `http://127.0.0.1:${config.port}`;
    this.names = clusterNames(config.cluster);
    this.gateway = this.spawnGateway();
    this.exited = new Promise((resolve) => this.gateway.once('exit', () => resolve()));
  }

  private spawnGateway(): ChildProcess {
    const out = fs.openSync(this.logFile, 'a');
    // Launched as `npm start` launches it.
    const gateway = spawn(process.execPath, [...GATEWAY_NODE_FLAGS, GATEWAY_ENTRY], { env: { ...NODE_PROCESS_ENV, ...this.env }, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    return gateway;
  }

  /** Kills the gateway as a crash would (its workers keep running) and starts a new one. */
  async crashAndRestartGateway(): Promise<void> {
    const gone = new Promise((resolve) => this.gateway.once('exit', resolve));
    this.gateway.kill('SIGKILL');
    await gone;
    this.gateway = this.spawnGateway();
    this.exited = new Promise((resolve) => this.gateway.once('exit', () => resolve()));
    await this.waitHealthy();
  }

  static async start(extraEnv: Record<string, string> = {}): Promise<TestCluster> {
    // Exactly the environment `npm start` gives the gateway: jest's NODE_ENV=test must not
    // leak in (it changes Apollo's defaults, e.g. introspection, from what users get).
    const { NODE_ENV: _jestNodeEnv, ...inherited } = process.env as Record<string, string>;
    const env: Record<string, string> = {
      ...inherited,
      DBAAS_CLUSTER: uniqueClusterName(),
      PORT: String(await freePort()),
      DBAAS_ADMIN_TOKEN: randomBytes(16).toString('hex'),
      LOG_LEVEL: 'info',
      ...extraEnv,
    };
    const config = loadConfig(env);
    const logFile = path.join(os.tmpdir(), `ridedb-${config.cluster}.log`);
    const cluster = new TestCluster(config, env, logFile);
    try {
      await cluster.waitHealthy();
    } catch (err) {
      // Not left running (with its workers) behind a start that failed: the caller has no cluster to stop.
      await cluster.stopGateway().catch((stopErr: Error) => process.stderr.write(`could not stop the gateway of a failed start: ${stopErr.message}\n`));
      throw err;
    }
    return cluster;
  }

  /** One more gateway of the same cluster (its own port and log, `extraEnv` on top), started as `npm start` would. */
  async addGateway(extraEnv: Record<string, string> = {}): Promise<TestCluster> {
    const env = { ...this.env, PORT: String(await freePort()), ...extraEnv };
    const config = loadConfig(env);
    const other = new TestCluster(config, env, this.logFile.replace(/\.log$/, `.${config.port}.log`));
    await other.waitHealthy();
    return other;
  }

  /** Stops this gateway alone (SIGTERM), leaving the cluster to the others. */
  async stopGateway(): Promise<void> {
    if (this.gateway.exitCode !== null || this.gateway.signalCode !== null) return;
    const force = setTimeout(() => this.gateway.kill('SIGKILL'), 15_000);
    this.gateway.kill('SIGTERM');
    await this.exited;
    clearTimeout(force);
  }

  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    await waitUntil(
      `a healthy cluster (log: ${this.logFile})`,
      async () => {
        if (this.gateway.exitCode !== null) throw new Error(`gateway exited (${this.gateway.exitCode}); see ${this.logFile}`);
        // `ok`: a master and a slave serve (`degraded`, a master alone, is not enough here).
        const res = await fetch(`${this.url}/healthz`);
        return res.status === 200 && ((await res.json()) as { status: string }).status === 'ok';
      },
      timeoutMs,
    );
  }

  async gql<T = Record<string, unknown>>(query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<GqlResponse<T>> {
    const res = await fetch(`${this.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as Omit<GqlResponse<T>, 'status' | 'headers'>;
    return { status: res.status, headers: res.headers, ...body };
  }

  /** Like gql, but with the admin token. */
  admin<T = Record<string, unknown>>(query: string, variables: Record<string, unknown> = {}) {
    return this.gql<T>(query, variables, { authorization: `Bearer ${this.config.adminToken}` });
  }

  /** Runs a query and fails the test on any GraphQL error. */
  async data<T = Record<string, unknown>>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const res = await this.gql<T>(query, variables);
    if (res.errors?.length || !res.data) throw new Error(`GraphQL errors: ${JSON.stringify(res.errors)}`);
    return res.data;
  }

  /** Every ride of a route, page by page (a list answers one page: docs/contract.md). */
  async allRides(source: number, destination: number, upcomingOnly = true): Promise<Array<{ id: number; timestamp: string }>> {
    const all: Array<{ id: number; timestamp: string; cursor: string }> = [];
    for (let after: string | null = null; ;) {
      type Page = { rides: Array<{ id: number; timestamp: string; cursor: string }> };
      const { rides }: Page = await this.data<Page>(
        'query($s: Int!, $d: Int!, $u: Boolean, $after: String) { rides(source: $s, destination: $d, upcomingOnly: $u, first: 1000, after: $after) { id timestamp cursor } }',
        { s: source, d: destination, u: upcomingOnly, after },
      );
      all.push(...rides);
      if (rides.length < 1000) return all.map(({ id, timestamp }) => ({ id, timestamp }));
      after = rides[rides.length - 1].cursor;
    }
  }

  async workers(): Promise<WorkerInfo[]> {
    return (await this.data<{ workers: WorkerInfo[] }>('{ workers { id pid role appliedSeq host } }')).workers;
  }

  async master(): Promise<WorkerInfo> {
    return waitUntil('a master', async () => (await this.workers()).find((w) => w.role === 'MASTER'));
  }

  /** A worker's own database, whatever WORKER_STORAGE (test/support/workerStorage.ts). */
  workerDatabaseUrl(workerId: string): string {
    return workerDatabaseUrl(this.config, workerId);
  }

  /** Environment for starting a worker by hand in this cluster. */
  workerEnv(workerId: string): Record<string, string> {
    return { ...(process.env as Record<string, string>), ...workerEnvironment(this.config), WORKER_ID: workerId };
  }

  /** Stops the gateway (which stops its workers) and removes the namespace. */
  async stop(): Promise<void> {
    await this.stopGateway();
    // Forced: this gateway has stopped, but one crashAndRestartGateway killed may still
    // show in ZooKeeper until its session expires.
    await destroyCluster(this.config, { force: true });
  }
}

const DOMAIN_TABLES = ['areas', 'users', 'rides', 'ride_riders'];

/** md5 of every domain table's rows, in a stable order. */
export async function domainChecksums(databaseUrl: string): Promise<Record<string, string>> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const sums: Record<string, string> = {};
    for (const table of DOMAIN_TABLES) {
      const { rows } = await client.query<{ n: number; sum: string }>(
        `SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS sum FROM ${table} t`,
      );
      sums[table] = `${rows[0].n}:${rows[0].sum}`;
    }
    return sums;
  } finally {
    await client.end();
  }
}

export async function queryOne<T>(databaseUrl: string, sql: string, values: unknown[] = []): Promise<T> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows[0] as T;
  } finally {
    await client.end();
  }
}

/**
 * How far a worker's database has applied the log; 0 while that database or its tables
 * do not exist yet (a worker still starting). Any other failure is the test's.
 */
export async function appliedSeqOf(databaseUrl: string): Promise<number> {
  try {
    return Number((await queryOne<{ applied_seq: string }>(databaseUrl, 'SELECT applied_seq FROM _dbaas_state')).applied_seq);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '3D000' || code === '42P01') return 0; // no such database / table yet
    throw err;
  }
}

export const PASSWORD = '3da541559918a808c2402bba5012f6c60b27661c';
