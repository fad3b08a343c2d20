import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { PAGE_SIZE_LIMIT } from '../schema/values';
import { brokerNodes, brokerNodesProblem } from './broker';
import { dockerHostsProblem, hasRemoteDockerHost, loopbackAddresses, parseDockerHosts, type DockerHost } from './dockerHosts';

/**
 * Every setting of ridedb, read once from the environment. docs/contract.md section 2 fixes the
 * names and defaults; docs/operations.md explains each trade-off.
 */
const intFromEnv = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);

const envSchema = z.object({
  PORT: intFromEnv(4000),
  // One node or a cluster's nodes, comma-separated (platform/broker.ts).
  AMQP_URL: z
    .string()
    .min(1)
    .default('amqp://guest:guest@127.0.0.1:5672')
    .superRefine((v, ctx) => {
      const problem = brokerNodesProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  // Unset: min(3, nodes in AMQP_URL) (loadConfig).
  QUEUE_REPLICAS: z.coerce.number().int().min(1).max(7).optional(),
  ZK_HOSTS: z.string().min(1).default('127.0.0.1:2181'),
  DATABASE_URL: z.string().min(1).default('postgres://postgres@127.0.0.1:5432/postgres'),
  // Used verbatim in queue, znode and database names, so only safe characters.
  DBAAS_CLUSTER: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,39}$/, 'DBAAS_CLUSTER must be lower-case letters, digits and _ (max 40), starting with a letter')
    .default('ridedb'),
  WORKER_RUNTIME: z.enum(['process', 'docker']).default('process'),
  WORKER_IMAGE: z.string().min(1).default('ridedb-worker:latest'),
  // Docker daemons of the docker runtime (platform/dockerHosts.ts); unset: the local one.
  DOCKER_HOSTS: z
    .string()
    .default('')
    .superRefine((v, ctx) => {
      const problem = dockerHostsProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  DOCKER_HOST_TIMEOUT_MS: intFromEnv(10_000, 1000),
  // As the Docker CLI reads it: TLS client certificates for tcp:// daemons.
  DOCKER_CERT_PATH: z
    .string()
    .refine((p) => path.isAbsolute(p), 'DOCKER_CERT_PATH must be an absolute path')
    .optional(),
  // Unset: decided by WORKER_RUNTIME (loadConfig).
  WORKER_STORAGE: z.enum(['shared', 'dedicated']).optional(),
  WORKER_DATA_ROOT: z
    .string()
    .refine((p) => path.isAbsolute(p), 'WORKER_DATA_ROOT must be an absolute path')
    .optional(),
  DBAAS_ADMIN_TOKEN: z.string().min(1).optional(),
  SCALE_INTERVAL_SECONDS: intFromEnv(120, 1),
  READS_PER_SLAVE: intFromEnv(20, 1),
  MIN_SLAVES: intFromEnv(1, 0),
  MAX_SLAVES: intFromEnv(8, 0),
  READ_TIMEOUT_MS: intFromEnv(5000, 50),
  WRITE_TIMEOUT_MS: intFromEnv(10000, 50),
  ZK_SESSION_TIMEOUT_MS: intFromEnv(6000, 1000),
  // A worker that paused for one beat less than this may be fenced: under 1 s, a few
  // missed beats (GC, a busy host) would restart it. Unset: defaultHungWorkerMs.
  HUNG_WORKER_MS: z.coerce
    .number()
    .int()
    .refine((v) => v === 0 || v >= 1000, 'HUNG_WORKER_MS must be 0 (off) or at least 1000')
    .optional(),
  LOG_RETENTION_BYTES: intFromEnv(2 * 1024 ** 3, 10_000),
  MAX_QUERY_DEPTH: intFromEnv(8, 1),
  MUTATIONS_PER_MINUTE_PER_IP: intFromEnv(60_000, 0),
  CORS_ORIGINS: z.string().default(''),
  MAX_ALIASES: intFromEnv(30, 0),
  MAX_QUERY_COST: intFromEnv(5000, 1),
  MAX_QUERY_BYTES: intFromEnv(100_000, 100),
  MAX_QUERY_TOKENS: intFromEnv(10_000, 100),
  MAX_SUBSCRIPTIONS_PER_CONNECTION: intFromEnv(100, 1),
  MAX_SUBSCRIPTIONS_PER_ADDRESS: intFromEnv(1000, 1),
  MAX_CONNECTIONS_PER_ADDRESS: intFromEnv(1000, 1),
  MAX_PIPELINED_REQUESTS: intFromEnv(32, 1),
  MAX_UNSENT_ANSWER_BYTES: intFromEnv(128 * 2 ** 20, 1024),
  LIVE_HISTORY_CHANGES: intFromEnv(50_000, 1),
  LIVE_HISTORY_BYTES: intFromEnv(32 * 2 ** 20, 1),
  LIVE_BUFFER_CHANGES: intFromEnv(1000, 1),
  LIVE_REPLAY_WINDOW_SECONDS: intFromEnv(900, 0),
  READ_CACHE_BYTES: intFromEnv(64 * 2 ** 20, 0),
  MIN_SEQ_LOOKAHEAD: intFromEnv(10_000, 0),
  IDEMPOTENCY_WINDOW_SECONDS: intFromEnv(86_400, 1),
  MAX_POSITION_WAITS: intFromEnv(256, 1),
  QUERY_COST_LIST_FACTOR: intFromEnv(10, 1),
  PAGE_SIZE_DEFAULT: intFromEnv(100, 1),
  PAGE_SIZE_MAX: intFromEnv(1000, 1),
  MAX_RIDERS_PER_RIDE: intFromEnv(100, 1),
  MAX_ANSWER_BYTES: intFromEnv(8 * 2 ** 20, 1024),
  COMPILED_OPERATIONS: z.enum(['on', 'off']).default('on'),
  GRAPHQL_INTROSPECTION: z.enum(['on', 'off']).default('on'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  port: number;
  amqpUrl: string;
  /** RabbitMQ nodes holding each durable queue (platform/topology.ts). */
  queueReplicas: number;
  zkHosts: string;
  databaseUrl: string;
  cluster: string;
  workerRuntime: 'process' | 'docker';
  workerImage: string;
  /** The Docker daemons workers are placed on (docker runtime). */
  dockerHosts: DockerHost[];
  /** Directory of ca.pem, cert.pem, key.pem (or `<name>/` of them per host) for tcp daemons; null: plain tcp. */
  dockerCertPath: string | null;
  /** How long a Docker daemon may not answer before its workers count as lost and are replaced elsewhere. */
  dockerHostTimeoutMs: number;
  /**
   * `shared`: each worker creates its database on the server DATABASE_URL names.
   * `dedicated`: each worker runs a PostgreSQL of its own under workerDataRoot
   * (worker/ownPostgres.ts), so no two replicas share a server's fate.
   */
  workerStorage: 'shared' | 'dedicated';
  /** Where dedicated workers keep their PostgreSQL: `<root>/<cluster>/<workerId>/`. */
  workerDataRoot: string;
  adminToken: string;
  /** True when the token was generated here and must be shown to the operator once. */
  adminTokenGenerated: boolean;
  scaleIntervalSeconds: number;
  readsPerSlave: number;
  minSlaves: number;
  maxSlaves: number;
  readTimeoutMs: number;
  writeTimeoutMs: number;
  zkSessionTimeoutMs: number;
  /** A serving worker whose heartbeat stops for this long (by ZooKeeper's clock) is fenced; 0 turns the watchdog off. */
  hungWorkerMs: number;
  /** Size bound of SyncQ's log stream; older entries are trimmed (workers then bootstrap from a snapshot). */
  logRetentionBytes: number;
  maxQueryDepth: number;
  /** 0 turns the limit off. */
  mutationsPerMinutePerIp: number;
  /** Browser origins allowed to call the API cross-origin; empty: none (no CORS headers). */
  corsOrigins: string[];
  maxAliases: number;
  /** Estimated work one GraphQL document may ask for: each field 1, a list's contents × queryCostListFactor. */
  maxQueryCost: number;
  /** Rows of a list answer when the client gives no `first`, and the most it may ask for. */
  pageSizeDefault: number;
  pageSizeMax: number;
  /**
   * Riders one ride takes (the master refuses more joins with CONFLICT). A join logs the
   * ride with its riders, so this bounds every join's log entry and live change.
   */
  maxRidersPerRide: number;
  /** Most JSON a replica answers one client selection with (worker/selectionSql.ts). */
  maxAnswerBytes: number;
  queryCostListFactor: number;
  /** Longest GraphQL `query` text, in bytes, and most tokens parsed (every transport). */
  maxQueryBytes: number;
  maxQueryTokens: number;
  /** Open graphql-ws operations per socket and per client address. */
  maxSubscriptionsPerConnection: number;
  maxSubscriptionsPerAddress: number;
  /** TCP connections (HTTP and websockets) open at once per client address. */
  maxConnectionsPerAddress: number;
  /** Requests one HTTP connection may have waiting for their answers. */
  maxPipelinedRequests: number;
  /** Answers waiting in the gateway for their clients to read them, all connections together. */
  maxUnsentAnswerBytes: number;
  /** Ride changes a gateway keeps for live subscriptions to resume from (`afterSeq`). */
  liveHistoryChanges: number;
  /** And at most this much of their JSON text: changes differ in size (a joined ride carries its riders). */
  liveHistoryBytes: number;
  /** Changes one live subscription may have waiting before it ends with SLOW_CONSUMER. */
  liveBufferChanges: number;
  /** How far back a starting gateway reads the log, so subscriptions resume across its restart. */
  liveReplayWindowSeconds: number;
  /** Bytes of compiled-read answers the gateway keeps, dropped exactly when a write changes them; 0: no cache. */
  readCacheBytes: number;
  /** How far past the newest known seq an X-DBaaS-Min-Seq may be (farther: BAD_USER_INPUT at once). */
  minSeqLookahead: number;
  /** Reads waiting at once for a client-named position the gateway has not seen. */
  maxPositionWaits: number;
  /** How long request ids (and Idempotency-Keys) are remembered for exactly-once retries. */
  idempotencyWindowSeconds: number;
  /** Data queries as one SQL statement, single data mutations without resolvers (gateway/graphql/compiledOperations.ts). */
  compiledOperations: boolean;
  /** Schema introspection (explorer docs, codegen, devtools); off for a locked-down deployment. */
  introspection: boolean;
  logLevel: string;
}

/**
 * Where dedicated storage lives unless WORKER_DATA_ROOT says: root's usual place for
 * service data, else the user's own data directory (a non-root user cannot write /var/lib).
 */
function defaultDataRoot(): string {
  if (process.getuid?.() === 0) return '/var/lib/ridedb';
  return path.join(process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local/share'), 'ridedb');
}

export class ConfigError extends Error {
  readonly code = 'CONFIG';
}

/** Every environment variable ridedb reads, as the schema above declares them. */
export const SETTING_NAMES: readonly string[] = Object.keys(envSchema.shape);

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.MAX_RIDERS_PER_RIDE > PAGE_SIZE_LIMIT) {
    throw new ConfigError(`invalid configuration: MAX_RIDERS_PER_RIDE (${e.MAX_RIDERS_PER_RIDE}) must be at most ${PAGE_SIZE_LIMIT}`);
  }
  if (e.PAGE_SIZE_DEFAULT > e.PAGE_SIZE_MAX || e.PAGE_SIZE_MAX > PAGE_SIZE_LIMIT) {
    throw new ConfigError(`invalid configuration: need PAGE_SIZE_DEFAULT (${e.PAGE_SIZE_DEFAULT}) <= PAGE_SIZE_MAX (${e.PAGE_SIZE_MAX}) <= ${PAGE_SIZE_LIMIT}`);
  }
  if (e.MIN_SLAVES > e.MAX_SLAVES) {
    throw new ConfigError(`invalid configuration: MIN_SLAVES (${e.MIN_SLAVES}) > MAX_SLAVES (${e.MAX_SLAVES})`);
  }
  const dockerHosts = parseDockerHosts(e.DOCKER_HOSTS);
  if (e.WORKER_RUNTIME === 'docker' && hasRemoteDockerHost(dockerHosts)) {
    // Workers connect to what the gateway passes them; another machine's loopback is its own.
    const local = loopbackAddresses([...brokerNodes(e.AMQP_URL), ...e.ZK_HOSTS.split(','), ...(e.WORKER_STORAGE === 'shared' ? [e.DATABASE_URL] : [])]);
    if (local.length) {
      throw new ConfigError(
        `invalid configuration: DOCKER_HOSTS names another machine, but workers there could not reach loopback addresses (${local.map((a) => a.replace(/\/\/[^@/]*@/, '//…@')).join(', ')}): give AMQP_URL, ZK_HOSTS (and DATABASE_URL with shared storage) addresses every host reaches`,
      );
    }
  }
  return {
    port: e.PORT,
    amqpUrl: e.AMQP_URL,
    queueReplicas: e.QUEUE_REPLICAS ?? Math.min(3, brokerNodes(e.AMQP_URL).length),
    zkHosts: e.ZK_HOSTS,
    databaseUrl: e.DATABASE_URL,
    cluster: e.DBAAS_CLUSTER,
    workerRuntime: e.WORKER_RUNTIME,
    workerImage: e.WORKER_IMAGE,
    dockerHosts,
    dockerHostTimeoutMs: e.DOCKER_HOST_TIMEOUT_MS,
    dockerCertPath: e.DOCKER_CERT_PATH ?? null,
    // Containers isolate workers anyway, and a PostgreSQL inside each costs little more
    // there; child processes keep today's quick default (docs/operations.md).
    workerStorage: e.WORKER_STORAGE ?? (e.WORKER_RUNTIME === 'docker' ? 'dedicated' : 'shared'),
    workerDataRoot: e.WORKER_DATA_ROOT ?? defaultDataRoot(),
    adminToken: e.DBAAS_ADMIN_TOKEN ?? randomBytes(24).toString('hex'),
    adminTokenGenerated: e.DBAAS_ADMIN_TOKEN === undefined,
    scaleIntervalSeconds: e.SCALE_INTERVAL_SECONDS,
    readsPerSlave: e.READS_PER_SLAVE,
    minSlaves: e.MIN_SLAVES,
    maxSlaves: e.MAX_SLAVES,
    readTimeoutMs: e.READ_TIMEOUT_MS,
    writeTimeoutMs: e.WRITE_TIMEOUT_MS,
    zkSessionTimeoutMs: e.ZK_SESSION_TIMEOUT_MS,
    hungWorkerMs: e.HUNG_WORKER_MS ?? defaultHungWorkerMs(e.ZK_SESSION_TIMEOUT_MS, zkServerCount(e.ZK_HOSTS)),
    logRetentionBytes: e.LOG_RETENTION_BYTES,
    maxQueryDepth: e.MAX_QUERY_DEPTH,
    mutationsPerMinutePerIp: e.MUTATIONS_PER_MINUTE_PER_IP,
    corsOrigins: e.CORS_ORIGINS.split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    maxAliases: e.MAX_ALIASES,
    maxQueryCost: e.MAX_QUERY_COST,
    pageSizeDefault: e.PAGE_SIZE_DEFAULT,
    pageSizeMax: e.PAGE_SIZE_MAX,
    maxRidersPerRide: e.MAX_RIDERS_PER_RIDE,
    maxAnswerBytes: e.MAX_ANSWER_BYTES,
    queryCostListFactor: e.QUERY_COST_LIST_FACTOR,
    maxQueryBytes: e.MAX_QUERY_BYTES,
    maxQueryTokens: e.MAX_QUERY_TOKENS,
    maxSubscriptionsPerConnection: e.MAX_SUBSCRIPTIONS_PER_CONNECTION,
    maxSubscriptionsPerAddress: e.MAX_SUBSCRIPTIONS_PER_ADDRESS,
    maxConnectionsPerAddress: e.MAX_CONNECTIONS_PER_ADDRESS,
    maxPipelinedRequests: e.MAX_PIPELINED_REQUESTS,
    maxUnsentAnswerBytes: e.MAX_UNSENT_ANSWER_BYTES,
    liveHistoryChanges: e.LIVE_HISTORY_CHANGES,
    liveHistoryBytes: e.LIVE_HISTORY_BYTES,
    liveBufferChanges: e.LIVE_BUFFER_CHANGES,
    liveReplayWindowSeconds: e.LIVE_REPLAY_WINDOW_SECONDS,
    readCacheBytes: e.READ_CACHE_BYTES,
    minSeqLookahead: e.MIN_SEQ_LOOKAHEAD,
    maxPositionWaits: e.MAX_POSITION_WAITS,
    idempotencyWindowSeconds: e.IDEMPOTENCY_WINDOW_SECONDS,
    compiledOperations: e.COMPILED_OPERATIONS === 'on',
    introspection: e.GRAPHQL_INTROSPECTION === 'on',
    logLevel: e.LOG_LEVEL,
  };
}

/** Servers in a ZooKeeper connection string (`host:port,host:port[/chroot]`). */
export function zkServerCount(zkHosts: string): number {
  return zkHosts
    .replace(/\/.*$/, '')
    .split(',')
    .filter((h) => h.trim()).length;
}

/**
 * HUNG_WORKER_MS unset: 1 s, unless a healthy worker may need longer to write again after
 * its ZooKeeper server stops answering. node-zookeeper-client notices a server gone quiet
 * after a third of the session timeout (its ping timeout), gives up connecting to one
 * after the session timeout ÷ the number of servers, and then moves the session to the
 * next; the watchdog must not take that for a hang. So with an ensemble the default is
 * the longer of the two plus 500 ms (2.5 s for 3 servers and the 6 s default). With one
 * server, a server that stalls stalls the watchdog's own looks too.
 */
export function defaultHungWorkerMs(sessionTimeoutMs: number, zkServers: number): number {
  return zkServers > 1 ? Math.max(1000, Math.ceil(sessionTimeoutMs / Math.min(3, zkServers)) + 500) : 1000;
}

/** The settings a worker of this cluster needs, as environment variables (what the runtimes pass). */
export function workerEnvironment(c: Config): Record<string, string> {
  return {
    AMQP_URL: c.amqpUrl,
    QUEUE_REPLICAS: String(c.queueReplicas),
    ZK_HOSTS: c.zkHosts,
    DATABASE_URL: c.databaseUrl,
    DBAAS_CLUSTER: c.cluster,
    // Resolved here: a worker does not know its runtime, which decides the default.
    WORKER_STORAGE: c.workerStorage,
    WORKER_DATA_ROOT: c.workerDataRoot,
    ZK_SESSION_TIMEOUT_MS: String(c.zkSessionTimeoutMs),
    LOG_RETENTION_BYTES: String(c.logRetentionBytes),
    IDEMPOTENCY_WINDOW_SECONDS: String(c.idempotencyWindowSeconds),
    MAX_RIDERS_PER_RIDE: String(c.maxRidersPerRide),
    MAX_ANSWER_BYTES: String(c.maxAnswerBytes),
    LOG_LEVEL: c.logLevel,
  };
}
