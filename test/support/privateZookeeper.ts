import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep, waitUntil } from './cluster';

const ZK_CLASSPATH = '/etc/zookeeper/conf:/usr/share/java/zookeeper.jar';
const ZK_MAIN = 'org.apache.zookeeper.server.quorum.QuorumPeerMain';

/**
 * A ZooKeeper of a test's own, on a free port with its config, data, logs and pid file
 * in a temporary directory, so a test can stop it (or have bootstrap start it) without
 * going near the machine's shared ZooKeeper. The pid file is where zkServer.sh puts it
 * (`<dataDir>/zookeeper_server.pid`), whoever started the server.
 */
export class PrivateZookeeper {
  readonly configFile: string;
  readonly pidFile: string;
  readonly hosts: string;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {
    this.configFile = path.join(dir, 'conf', 'zoo.cfg');
    this.pidFile = path.join(dir, 'data', 'zookeeper_server.pid');
    this.hosts = `127.0.0.1:${port}`;
  }

  /**
   * Writes the config; nothing runs yet. `tickTime` is ZooKeeper's clock: sessions
   * expire on its ticks (up to one tick late) and must last 2–20 ticks.
   */
  static async prepare(options: { tickTimeMs?: number } = {}): Promise<PrivateZookeeper> {
    const zk = new PrivateZookeeper(fs.mkdtempSync(path.join(os.tmpdir(), 'ridedb-zk-')), await freePort());
    for (const sub of ['conf', 'data', 'log']) fs.mkdirSync(path.join(zk.dir, sub));
    fs.writeFileSync(
      zk.configFile,
      [
        `tickTime=${options.tickTimeMs ?? 2000}`,
        `dataDir=${path.join(zk.dir, 'data')}`,
        `clientPort=${zk.port}`,
        'clientPortAddress=127.0.0.1',
        // The shared ZooKeeper already holds 8080; this one needs no admin server.
        'admin.enableServer=false',
        '4lw.commands.whitelist=ruok',
        '',
      ].join('\n'),
    );
    return zk;
  }

  /** Starts the server as zkServer.sh would (own session, pid file), and waits until it answers. */
  async start(): Promise<void> {
    const out = fs.openSync(path.join(this.dir, 'log', 'zookeeper.out'), 'a');
    const java = spawn('java', [`-Dzookeeper.log.dir=${path.join(this.dir, 'log')}`, '-cp', ZK_CLASSPATH, ZK_MAIN, this.configFile], {
      detached: true,
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    java.unref();
    fs.writeFileSync(this.pidFile, String(java.pid));
    await waitUntil(`the private ZooKeeper at ${this.hosts}`, () => this.answers(), 60_000);
  }

  /** True if a server answers `ruok` with `imok` on this port. */
  answers(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = net.connect(this.port, '127.0.0.1');
      let reply = '';
      socket.setTimeout(2000, () => socket.destroy());
      socket.on('connect', () => socket.write('ruok'));
      socket.on('data', (d: Buffer) => (reply += d.toString()));
      socket.on('error', () => resolve(false));
      socket.on('close', () => resolve(reply === 'imok'));
    });
  }

  /** The server's pid from its pid file, or null when there is none. */
  pid(): number | null {
    if (!fs.existsSync(this.pidFile)) return null;
    const pid = Number(fs.readFileSync(this.pidFile, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  }

  /** Stops the server by its pid file and waits until the process is gone. */
  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid === null) return;
    if (signal(pid, 'SIGTERM')) {
      const deadline = Date.now() + 30_000;
      while (signal(pid, 0)) {
        if (Date.now() > deadline) signal(pid, 'SIGKILL');
        await sleep(100);
      }
    }
    fs.rmSync(this.pidFile, { force: true });
  }

  /** What `zkServer.sh restart` does: stop, then start. Data and sessions are kept (dataDir). */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async remove(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** process.kill that reports a process already gone (ESRCH) as false instead of throwing. */
export function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/**
 * Waits for every promise (so nothing is still starting or stopping behind a failure),
 * then throws the first failure: for starting or removing several private services.
 */
export async function settleAll(promises: Array<Promise<unknown> | undefined>): Promise<void> {
  const results = await Promise.allSettled(promises.filter((p): p is Promise<unknown> => p !== undefined));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
