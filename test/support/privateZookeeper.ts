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
    zk.writeConfig(options.tickTimeMs ?? 2000, []);
    return zk;
  }

  /**
   * Servers of one ensemble (`server.N=127.0.0.1:<quorum port>:<election port>` and a
   * `myid` each, every port its own); nothing runs yet. `hosts` of any of them is the
   * server's own address; `ensembleHosts` lists them all, as ZK_HOSTS takes it.
   */
  static async prepareEnsemble(size: number, options: { tickTimeMs?: number } = {}): Promise<PrivateZookeeper[]> {
    const servers: PrivateZookeeper[] = [];
    const peers: string[] = [];
    for (let id = 1; id <= size; id++) {
      servers.push(new PrivateZookeeper(fs.mkdtempSync(path.join(os.tmpdir(), `ridedb-zk${id}-`)), await freePort()));
      peers.push(`server.${id}=127.0.0.1:${await freePort()}:${await freePort()}`);
    }
    servers.forEach((zk, i) => {
      zk.writeConfig(options.tickTimeMs ?? 2000, peers);
      fs.writeFileSync(path.join(zk.dir, 'data', 'myid'), `${i + 1}\n`);
    });
    return servers;
  }

  private writeConfig(tickTimeMs: number, peers: string[]): void {
    for (const sub of ['conf', 'data', 'log']) fs.mkdirSync(path.join(this.dir, sub), { recursive: true });
    fs.writeFileSync(
      this.configFile,
      [
        `tickTime=${tickTimeMs}`,
        `dataDir=${path.join(this.dir, 'data')}`,
        `clientPort=${this.port}`,
        'clientPortAddress=127.0.0.1',
        // The shared ZooKeeper already holds 8080; this one needs no admin server.
        'admin.enableServer=false',
        '4lw.commands.whitelist=ruok,srvr',
        ...(peers.length ? ['initLimit=10', 'syncLimit=5', ...peers] : []),
        '',
      ].join('\n'),
    );
  }

  /** `leader`, `follower` or `standalone` as the server says (`srvr`), or null when it does not serve. */
  async mode(): Promise<string | null> {
    const reply = await fourLetters(this.port, 'srvr');
    return /^Mode: (\w+)/m.exec(reply)?.[1] ?? null;
  }

  /** Starts the server as zkServer.sh would (own session, pid file), and waits until it answers. */
  async start(): Promise<void> {
    const out = fs.openSync(path.join(this.dir, 'log', 'zookeeper.out'), 'a');
    const java = spawn('java', ['-Xmx256m', `-Dzookeeper.log.dir=${path.join(this.dir, 'log')}`, '-cp', ZK_CLASSPATH, ZK_MAIN, this.configFile], {
      detached: true,
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    java.unref();
    fs.writeFileSync(this.pidFile, String(java.pid));
    await waitUntil(`the private ZooKeeper at ${this.hosts}`, () => this.answers(), 60_000);
  }

  /** True if a server answers `ruok` with `imok` on this port. */
  async answers(): Promise<boolean> {
    return (await fourLetters(this.port, 'ruok')) === 'imok';
  }

  /** The server's pid from its pid file, or null when there is none or that pid is now another process. */
  pid(): number | null {
    if (!fs.existsSync(this.pidFile)) return null;
    const pid = Number(fs.readFileSync(this.pidFile, 'utf8').trim());
    if (!Number.isSafeInteger(pid) || pid <= 0) return null;
    let commandLine: string;
    try {
      commandLine = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return pid; // gone: signalling it finds nothing
      throw err;
    }
    return commandLine.includes(this.configFile) ? pid : null;
  }

  /**
   * Stops the server by its pid file and waits until the process is gone. SIGKILL after
   * 5 s: a full suite run once spent ~31 s in the health test, which takes ~1 s alone, most
   * likely the 30 s this used to allow. ZooKeeper syncs its transaction log before it
   * answers a write, so a killed server keeps its data and sessions as a stopped one does.
   */
  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid === null) return;
    if (signal(pid, 'SIGTERM')) {
      const deadline = Date.now() + 5_000;
      let killed = false;
      while (signal(pid, 0)) {
        if (!killed && Date.now() > deadline) {
          process.stderr.write(`private ZooKeeper ${this.hosts} (pid ${pid}) still ran 5 s after SIGTERM; SIGKILL\n`);
          killed = signal(pid, 'SIGKILL');
        }
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

/** A ZooKeeper four-letter command's reply ('' when nothing answers). */
function fourLetters(port: number, command: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(2000, () => socket.destroy());
    socket.on('connect', () => socket.write(command));
    socket.on('data', (d: Buffer) => (reply += d.toString()));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => resolve(reply));
  });
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
