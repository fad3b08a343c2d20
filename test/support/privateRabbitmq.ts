import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { isRunning } from '../../platform';
import { freePort, sleep } from './cluster';
import { signal } from './privateZookeeper';

/**
 * Debian's real scripts. Not /usr/sbin's wrappers: those su to the rabbitmq user, cd into
 * /var/lib/rabbitmq and send rabbitmq-server's output to /var/log/rabbitmq/startup_log,
 * the shared node's files. Elsewhere (a generic-unix install) the PATH's are the scripts.
 */
const RABBITMQ_BIN = fs.existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server') ? '/usr/lib/rabbitmq/bin' : '';
const bin = (name: string) => (RABBITMQ_BIN ? path.join(RABBITMQ_BIN, name) : name);

/** A node boots in ~5–10 s on a 2-core VM; start_app in ~3 s. */
const START_TIMEOUT_MS = 120_000;
const CTL_TIMEOUT_MS = 120_000;

/**
 * A RabbitMQ node of a test's own beside the machine's (`rabbit@localhost`), so a test can
 * stop its app without touching the broker every other cluster on the machine uses:
 * its own node name (`rabbit_ridedb_<random>@localhost`), AMQP port, distribution port,
 * epmd (on a port of its own, started here, so nothing registers with or starts the
 * machine's), Erlang cookie (HOME is the node's directory), config, env file and
 * enabled-plugins file (none: stream queues are in the core broker; the rabbitmq_stream
 * plugin only adds the stream protocol, which ridedb does not speak), and its mnesia,
 * log and pid file in a temporary directory. Nothing in /etc/rabbitmq or /var/lib/rabbitmq
 * is read or written. `remove()` stops the node and its epmd, by pid, and deletes the
 * directory.
 */
export class PrivateRabbitmq {
  readonly node: string;
  readonly url: string;
  private readonly pidFile: string;
  private readonly logFile: string;
  private epmdPid: number | null = null;

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly distPort: number,
    readonly epmdPort: number,
    /** False for the other nodes of a cluster: they register with the first node's epmd. */
    private readonly ownsEpmd: boolean,
  ) {
    // `localhost` as the machine's node has it (its rabbitmq-env.conf): it resolves here.
    this.node = `rabbit_ridedb_${randomBytes(4).toString('hex')}@localhost`;
    this.url = `amqp://guest:guest@127.0.0.1:${port}`;
    this.pidFile = path.join(dir, 'rabbitmq.pid');
    this.logFile = path.join(dir, 'log', 'startup.log');
  }

  /**
   * Writes the node's files; nothing runs yet. `peerOf`: a node this one will cluster with,
   * whose epmd and Erlang cookie it shares (nodes find each other through epmd and must
   * hold the same cookie).
   */
  static async prepare(peerOf?: PrivateRabbitmq): Promise<PrivateRabbitmq> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ridedb-rmq-'));
    const ports = new Set<number>();
    while (ports.size < 3) ports.add(await freePort());
    const [port, distPort, ownEpmdPort] = [...ports];
    const rabbit = new PrivateRabbitmq(dir, port, distPort, peerOf?.epmdPort ?? ownEpmdPort, !peerOf);
    for (const sub of ['mnesia', 'log']) fs.mkdirSync(path.join(dir, sub));
    fs.writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');
    // Empty: not the machine's rabbitmq.conf (its listener is 127.0.0.1:5672) nor its
    // rabbitmq-env.conf (NODENAME=rabbit@localhost); the environment below says it all.
    fs.writeFileSync(path.join(dir, 'rabbitmq.conf'), '');
    fs.writeFileSync(path.join(dir, 'rabbitmq-env.conf'), '');
    const cookie = peerOf ? fs.readFileSync(path.join(peerOf.dir, '.erlang.cookie'), 'utf8') : randomBytes(20).toString('hex').toUpperCase();
    fs.writeFileSync(path.join(dir, '.erlang.cookie'), cookie, { mode: 0o400 });
    return rabbit;
  }

  /** Environment of the node and of rabbitmqctl: the inherited one without any RabbitMQ or Erlang settings, plus this node's. */
  private env(): NodeJS.ProcessEnv {
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(RABBITMQ_|ERL_)/.test(k)));
    return {
      ...inherited,
      HOME: this.dir,
      ERL_EPMD_PORT: String(this.epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_NODENAME: this.node,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_MNESIA_BASE: path.join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(this.dir, 'log'),
      RABBITMQ_PID_FILE: this.pidFile,
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(this.dir, 'enabled_plugins'),
      RABBITMQ_CONFIG_FILE: path.join(this.dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(this.dir, 'advanced.config'),
      RABBITMQ_CONF_ENV_FILE: path.join(this.dir, 'rabbitmq-env.conf'),
      // Distribution on loopback only, like the machine's node.
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
  }

  /** Starts epmd and the node (`rabbitmq-server -detached`), each in a session of its own, and waits until AMQP answers. */
  async start(): Promise<void> {
    await this.startEpmd();
    const out = fs.openSync(this.logFile, 'a');
    const server = spawn(bin('rabbitmq-server'), ['-detached'], { env: this.env(), cwd: this.dir, detached: true, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const launched = await new Promise<number | null>((resolve, reject) => {
      server.once('error', reject);
      server.once('exit', (code) => resolve(code));
    });
    if (launched !== 0) throw new Error(`rabbitmq-server -detached exited with ${launched}:\n${this.logTail()}`);
    const deadline = Date.now() + START_TIMEOUT_MS;
    let sawPid = false;
    while (!(await this.answers())) {
      const pid = this.beamPid();
      if (pid !== null) sawPid = true;
      // The pid file comes early in the boot; a node that wrote it and died is not coming.
      if ((sawPid && pid === null) || Date.now() > deadline) {
        throw new Error(`the private RabbitMQ ${this.node} did not answer on port ${this.port}:\n${this.logTail()}`);
      }
      await sleep(200);
    }
  }

  /** The node's epmd, if it owns one (start() calls it; a cluster starts the first node's before any node). */
  async startEpmd(): Promise<void> {
    if (!this.ownsEpmd || (this.epmdPid !== null && isRunning(this.epmdPid))) return;
    const out = fs.openSync(path.join(this.dir, 'log', 'epmd.log'), 'a');
    const epmd = spawn('epmd', ['-port', String(this.epmdPort), '-address', '127.0.0.1'], { detached: true, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    epmd.unref();
    await new Promise<void>((resolve, reject) => {
      epmd.once('spawn', resolve);
      epmd.once('error', reject);
    });
    this.epmdPid = epmd.pid as number;
    const deadline = Date.now() + 10_000;
    while (!(await listening(this.epmdPort))) {
      if (!isRunning(this.epmdPid) || Date.now() > deadline) throw new Error(`epmd did not listen on port ${this.epmdPort}`);
      await sleep(50);
    }
  }

  /** True if an AMQP connection opens (and closes). */
  async answers(): Promise<boolean> {
    try {
      const connection = await amqp.connect(this.url, { timeout: 2000 });
      // A probe: that the connection opened is the answer; its later errors and a failed
      // close say nothing more about the broker.
      connection.on('error', () => undefined);
      await connection.close().catch(() => undefined);
      return true;
    } catch {
      return false; // it did not open: the broker is not answering
    }
  }

  /** `rabbitmqctl stop_app`: the broker goes away (connections closed, port shut), the node stays. */
  async stopApp(): Promise<void> {
    await this.ctl('stop_app');
  }

  /** `rabbitmqctl start_app`, then waits until AMQP answers. */
  async startApp(): Promise<void> {
    await this.ctl('start_app');
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await this.answers())) {
      if (Date.now() > deadline) throw new Error(`the private RabbitMQ ${this.node} did not answer after start_app:\n${this.logTail()}`);
      await sleep(100);
    }
  }

  /** The node crashes: its beam SIGKILLed, nothing shut down cleanly. */
  async kill(): Promise<void> {
    const pid = this.beamPid();
    if (pid === null) return;
    signal(pid, 'SIGKILL');
    while (isRunning(pid)) await sleep(50);
  }

  /** stop_app then start_app, as an operator's restart of the broker. */
  async bounce(): Promise<void> {
    await this.stopApp();
    await this.startApp();
  }

  /** rabbitmqctl against this node only (`-n`), asynchronous so the caller's event loop keeps running. */
  ctl(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(bin('rabbitmqctl'), ['-q', '-n', this.node, ...args], { env: this.env(), cwd: this.dir, timeout: CTL_TIMEOUT_MS }, (err, stdout, stderr) => {
        if (err) reject(new Error(`rabbitmqctl ${args.join(' ')} (${this.node}) failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
  }

  /**
   * The node's beam process: the pid file's, or (while booting, before it writes one) the
   * beam.smp whose home is this node's directory. Null when none runs.
   */
  beamPid(): number | null {
    const fromFile = fs.existsSync(this.pidFile) ? Number(fs.readFileSync(this.pidFile, 'utf8').trim()) : NaN;
    if (Number.isSafeInteger(fromFile) && fromFile > 0 && this.isOurBeam(fromFile)) return fromFile;
    for (const entry of fs.readdirSync('/proc')) {
      if (/^\d+$/.test(entry) && this.isOurBeam(Number(entry))) return Number(entry);
    }
    return null;
  }

  private isOurBeam(pid: number): boolean {
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return false; // gone meanwhile
      throw err;
    }
    const home = argv.indexOf('-home');
    return path.basename(argv[0] ?? '') === 'beam.smp' && home >= 0 && argv[home + 1] === this.dir && isRunning(pid);
  }

  /**
   * Stops the node (`rabbitmqctl stop`; SIGTERM, then SIGKILL, to its beam by pid if that
   * does not end it), then its epmd by pid, and deletes the directory.
   */
  async remove(): Promise<void> {
    try {
      let pid = this.beamPid();
      if (pid !== null) {
        await this.ctl('stop').catch(() => signal(pid as number, 'SIGTERM'));
        const deadline = Date.now() + 30_000;
        while ((pid = this.beamPid()) !== null) {
          if (Date.now() > deadline) signal(pid, 'SIGKILL');
          await sleep(100);
        }
      }
    } finally {
      if (this.epmdPid !== null && isRunning(this.epmdPid)) {
        signal(this.epmdPid, 'SIGTERM');
        for (let i = 0; i < 50 && isRunning(this.epmdPid); i++) await sleep(100);
        if (isRunning(this.epmdPid)) signal(this.epmdPid, 'SIGKILL');
      }
      this.epmdPid = null;
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  private logTail(): string {
    const logs = [this.logFile, path.join(this.dir, 'log', `${this.node}.log`)];
    return logs
      .filter((f) => fs.existsSync(f))
      .map((f) => `${f}:\n${fs.readFileSync(f, 'utf8').split('\n').slice(-15).join('\n')}`)
      .join('\n');
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
