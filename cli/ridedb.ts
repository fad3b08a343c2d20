#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * `ridedb`: the operator's command line, talking GraphQL to a gateway.
 *   ridedb status | workers | events [--follow] | watch --route S:D [--after SEQ] | scale N|auto | crash master|slave
 * Options: --url (else RIDEDB_URL, else http://localhost:$PORT, else http://localhost:4000),
 * --token (DBAAS_ADMIN_TOKEN), --json.
 */
const USAGE = `usage: ridedb <command> [--url URL] [--token TOKEN] [--json]
commands:
  status              master, slaves, epoch, log position, desired slaves
  workers             every live worker, by pid
  events [--follow]   cluster events, one line each, for 1 s (then the current state
                      if there were none); --follow: keep listening until Ctrl-C
  watch --route S:D   a route's rides, live: a snapshot, then every change, one line
                      each, until Ctrl-C; reconnects where it left off (--after SEQ:
                      start after that seq instead of a snapshot)
  scale N             hold N slaves, whatever the load, until scale auto (admin)
  scale auto          hand the slave count back to the autoscaler (admin)
  crash master|slave  kill the master, or the highest-pid slave (admin)
gateway: --url, else RIDEDB_URL, else http://localhost:$PORT, else http://localhost:4000`;

class CliError extends Error {}

interface Options {
  url: string;
  token: string | undefined;
  json: boolean;
}

interface Worker {
  id: string;
  pid: number;
  containerId: string | null;
  role: string;
  appliedSeq: number;
  startedAt: string;
  host: string | null;
}

/** What fetch says went wrong: the network error behind its generic "fetch failed". */
function causeOf(err: unknown): string {
  const cause = (err as Error).cause;
  if (cause instanceof Error) return cause.message;
  return cause === undefined ? (err as Error).message : JSON.stringify(cause);
}

async function graphql<T>(o: Options, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${o.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
  } catch (err) {
    throw new CliError(`cannot reach the gateway at ${o.url}: ${causeOf(err)}`);
  }
  const body = (await res.json()) as { data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  if (body.errors?.length) throw new CliError(body.errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('\n'));
  return body.data as T;
}

const WORKER_FIELDS = 'id pid containerId role appliedSeq startedAt host';
const print = (o: Options, value: unknown, text: string) => process.stdout.write(`${o.json ? JSON.stringify(value) : text}\n`);
const workerLine = (w: Worker) =>
  `${String(w.pid).padStart(8)}  ${w.role.padEnd(8)}  ${w.id.padEnd(12)}  seq ${String(w.appliedSeq).padStart(8)}  since ${w.startedAt}${w.host ? `  on ${w.host}` : ''}${w.containerId ? `  container ${w.containerId.slice(0, 12)}` : ''}`;

async function status(o: Options) {
  const { cluster } = await graphql<{
    cluster: { master: Worker | null; slaves: Worker[]; epoch: number; lastSeq: number; runtime: string; desiredSlaves: number; readsThisInterval: number };
  }>(o, `{ cluster { master { ${WORKER_FIELDS} } slaves { ${WORKER_FIELDS} } epoch lastSeq runtime desiredSlaves readsThisInterval } }`);
  print(
    o,
    cluster,
    [
      `epoch ${cluster.epoch}, log at seq ${cluster.lastSeq}, runtime ${cluster.runtime}, ${cluster.slaves.length}/${cluster.desiredSlaves} slaves, ${cluster.readsThisInterval} reads this interval`,
      cluster.master ? workerLine(cluster.master) : '  (no master)',
      ...cluster.slaves.map(workerLine),
    ].join('\n'),
  );
}

async function workers(o: Options) {
  const { workers: list } = await graphql<{ workers: Worker[] }>(o, `{ workers { ${WORKER_FIELDS} } }`);
  print(o, list, list.map(workerLine).join('\n') || '(no workers)');
}

/** `scale N`: a manual target that holds; `scale auto`: count null, back to the autoscaler. */
async function scale(o: Options, count: string | undefined) {
  if (!count || !/^(\d+|auto)$/.test(count)) throw new CliError('usage: ridedb scale N|auto');
  const { scaleSlaves } = await graphql<{ scaleSlaves: { desiredSlaves: number; scalingMode: 'AUTOMATIC' | 'MANUAL' } }>(
    o,
    'mutation($n: Int) { scaleSlaves(count: $n) { desiredSlaves scalingMode } }',
    { n: count === 'auto' ? null : Number(count) },
  );
  const mode = scaleSlaves.scalingMode === 'MANUAL' ? 'manual, until scale auto' : "automatic, from the autoscaler's next run";
  print(o, scaleSlaves, `desired slaves: ${scaleSlaves.desiredSlaves} (${mode})`);
}

async function crash(o: Options, which: string | undefined) {
  if (which !== 'master' && which !== 'slave') throw new CliError('usage: ridedb crash master|slave');
  const field = which === 'master' ? 'crashMaster' : 'crashSlave';
  const data = await graphql<Record<string, Worker>>(o, `mutation { ${field} { ${WORKER_FIELDS} } }`);
  print(o, data[field], `crashed ${which}: ${workerLine(data[field])}`);
}

/** How long `events` without --follow listens. */
const EVENTS_WINDOW_MS = 1000;

async function events(o: Options, follow: boolean): Promise<void> {
  const seen = await listen(o, follow);
  if (follow || seen > 0) return;
  // A quiet cluster is the usual case: an empty answer would look like a broken command.
  if (o.json) {
    // stdout stays one JSON event per line (here: none) for scripts.
    process.stderr.write(`no cluster events within ${EVENTS_WINDOW_MS} ms\n`);
    return;
  }
  process.stdout.write(`no cluster events within ${EVENTS_WINDOW_MS} ms (--follow keeps listening); the cluster now:\n`);
  await status(o);
}

/** Prints events as they come; resolves with how many, after EVENTS_WINDOW_MS or (with follow) on Ctrl-C. */
function listen(o: Options, follow: boolean): Promise<number> {
  let seen = 0;
  const client = createClient({ url: o.url.replace(/^http/, 'ws') + '/graphql', webSocketImpl: WebSocket, retryAttempts: follow ? Infinity : 0 });
  return new Promise((resolve, reject) => {
    const stop = client.subscribe<{ clusterEvents: Record<string, unknown> }>(
      { query: 'subscription { clusterEvents { type at workerId pid epoch fromSlaves toSlaves reason } }' },
      {
        next: ({ data }) => {
          if (!data) return;
          const e = data.clusterEvents;
          seen += 1;
          const details = ['workerId', 'pid', 'epoch', 'fromSlaves', 'toSlaves', 'reason']
            .filter((k) => e[k] !== null && e[k] !== undefined)
            .map((k) => `${k}=${String(e[k])}`)
            .join(' ');
          print(o, e, `${String(e.at)} ${String(e.type).padEnd(14)} ${details}`);
        },
        error: (err) => reject(new CliError(`event stream failed: ${err instanceof Error ? err.message : JSON.stringify(err)}`)),
        complete: () => resolve(seen),
      },
    );
    const end = () => {
      stop();
      void client.dispose();
      resolve(seen);
    };
    process.once('SIGINT', end);
    process.once('SIGTERM', end);
    if (!follow) setTimeout(end, EVENTS_WINDOW_MS);
  });
}

interface RideChange {
  type: string;
  seq: number;
  at: string;
  rideId: number | null;
  ride: { id: number; timestamp: string; createdBy: { username: string }; riders: Array<{ username: string }> } | null;
  rider: { username: string } | null;
  rides: Array<{ id: number; timestamp: string; createdBy: { username: string } }> | null;
}

const RIDE_CHANGE = 'type seq at rideId ride { id timestamp createdBy { username } riders { username } } rider { username } rides { id timestamp createdBy { username } }';

/**
 * Follows a route's live rides until Ctrl-C. Each (re)subscription asks for the changes
 * after the last change printed (its seq and ride), so a dropped connection, a restarted
 * gateway or a SLOW_CONSUMER end costs nothing but a pause; SNAPSHOT_REQUIRED starts over
 * with one.
 */
async function watch(o: Options, route: string | undefined, after: string | undefined): Promise<void> {
  const match = /^(\d+):(\d+)$/.exec(route ?? '');
  if (!match) throw new CliError('watch needs --route SOURCE:DESTINATION, e.g. --route 2:4');
  if (after !== undefined && !/^\d+$/.test(after)) throw new CliError('--after takes a seq (a whole number)');
  const [source, destination] = [Number(match[1]), Number(match[2])];
  let last: number | null = after === undefined ? null : Number(after);
  // The last change's ride, as one deleteUser gives a route several changes at one seq
  // (a cast: it is set in callbacks, which TypeScript's narrowing does not see).
  let lastRide = null as number | null;
  let stopping = false;
  const line = (c: RideChange) => {
    if (c.type === 'SNAPSHOT') {
      const rides = c.rides ?? [];
      return `${c.seq} ${c.at} SNAPSHOT       ${rides.length} rides${rides.length ? ': ' : ''}${rides.map((r) => `${r.id}@${r.timestamp}`).join(' ')}`;
    }
    const ride = c.ride ? ` ${c.ride.timestamp} by=${c.ride.createdBy.username} riders=${c.ride.riders.length}` : '';
    return `${c.seq} ${c.at} ${c.type.padEnd(14)} ride=${c.rideId ?? ''}${ride}${c.rider ? ` rider=${c.rider.username}` : ''}`;
  };
  for (;;) {
    const client = createClient({ url: o.url.replace(/^http/, 'ws') + '/graphql', webSocketImpl: WebSocket, retryAttempts: 0 });
    const why = await new Promise<string>((resolve) => {
      const end = () => {
        stopping = true;
        resolve('stopped');
      };
      process.once('SIGINT', end);
      process.once('SIGTERM', end);
      client.subscribe<{ rides: RideChange }>(
        {
          query: `subscription($s: Int!, $d: Int!, $after: Int, $afterRide: Int) { rides(source: $s, destination: $d, afterSeq: $after, afterRideId: $afterRide) { ${RIDE_CHANGE} } }`,
          variables: { s: source, d: destination, after: last, afterRide: last === null ? null : lastRide },
        },
        {
          next: ({ data, errors }) => {
            if (errors?.length) {
              const code = (errors[0].extensions as { code?: string } | undefined)?.code;
              if (code === 'SNAPSHOT_REQUIRED') [last, lastRide] = [null, null];
              if (code === 'BAD_USER_INPUT' || code === 'FORBIDDEN') {
                stopping = true;
                return resolve(`${code}: ${errors[0].message}`);
              }
              return resolve(`${code ?? 'ERROR'}: ${errors[0].message}`);
            }
            if (!data) return;
            [last, lastRide] = [data.rides.seq, data.rides.rideId];
            print(o, data.rides, line(data.rides));
          },
          error: (err) => resolve(err instanceof Error ? err.message : `connection closed (${(err as { code?: number }).code ?? 'no code'})`),
          complete: () => resolve('the gateway ended the subscription'),
        },
      );
    });
    await client.dispose();
    if (stopping) {
      if (why !== 'stopped') throw new CliError(why);
      return;
    }
    process.stderr.write(`ridedb watch: ${why}; resuming ${last === null ? 'from a new snapshot' : `after seq ${last}${lastRide === null ? '' : ` ride ${lastRide}`}`} in 1 s\n`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** RIDEDB_URL, else the gateway of this shell's PORT (as `npm start` would use it), else 4000. */
function defaultUrl(env: NodeJS.ProcessEnv): string {
  if (env.RIDEDB_URL) return env.RIDEDB_URL;
  if (env.PORT === undefined || env.PORT === '') return 'http://localhost:4000';
  if (!/^\d{1,5}$/.test(env.PORT)) throw new CliError(`PORT must be a port number (got ${JSON.stringify(env.PORT)}), or pass --url`);
  return `http://localhost:${env.PORT}`;
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string', default: process.env.DBAAS_ADMIN_TOKEN },
      json: { type: 'boolean', default: false },
      follow: { type: 'boolean', short: 'f', default: false },
      route: { type: 'string' },
      after: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const o: Options = { url: (values.url ?? defaultUrl(process.env)).replace(/\/+$/, ''), token: values.token, json: values.json };
  const [command, arg] = positionals;
  if (values.help || !command) return void process.stdout.write(`${USAGE}\n`);
  switch (command) {
    case 'status':
      return status(o);
    case 'workers':
      return workers(o);
    case 'events':
      return events(o, values.follow);
    case 'watch':
      return watch(o, values.route, values.after);
    case 'scale':
      return scale(o, arg);
    case 'crash':
      return crash(o, arg);
    default:
      throw new CliError(`unknown command ${command}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `ridedb: ${err instanceof CliError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? (err as Error).message : String((err as Error).stack ?? err)}\n`,
    );
    process.exit(err instanceof CliError ? 1 : 2);
  },
);
