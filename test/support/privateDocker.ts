import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { isRunning } from '../../platform';
import { freePort, sleep } from './cluster';
import { signal } from './privateZookeeper';

const START_TIMEOUT_MS = 60_000;

/**
 * A Docker daemon of a test's own, standing in for another machine: its own socket, data
 * root, exec root (and so its own containerd), pid file and log in a temporary directory,
 * no bridge and no iptables (workers use host networking). The machine's daemon is not
 * touched: images come over by `docker save | docker load`. `stopHost()` is a host's
 * loss: its daemon, containerd, shims and every container process, SIGKILLed by pid.
 * With `tls`, it also listens on a loopback tcp port that takes only clients with a
 * certificate of its own test CA (made here with openssl), as a remote daemon would.
 */
export class PrivateDockerHost {
  readonly socket: string;
  readonly docker: Docker;
  private pid: number | null = null;
  /** The tcp port of a TLS daemon, else null. */
  private tlsPort: number | null = null;

  private constructor(
    readonly name: string,
    readonly dir: string,
  ) {
    this.socket = path.join(dir, 'docker.sock');
    this.docker = new Docker({ socketPath: this.socket });
  }

  /** As DOCKER_HOSTS takes it: `name=tcp://127.0.0.1:<port>` for a TLS daemon, else `name=unix:///…/docker.sock`. */
  get entry(): string {
    return this.tlsPort === null ? `${this.name}=unix://${this.socket}` : `${this.name}=tcp://127.0.0.1:${this.tlsPort}`;
  }

  /** DOCKER_CERT_PATH for this host: a directory whose `<name>/` holds the client's ca.pem, cert.pem and key.pem. */
  get certPath(): string {
    return path.join(this.dir, 'client-certs');
  }

  static async start(name: string, options: { tls?: boolean } = {}): Promise<PrivateDockerHost> {
    const host = new PrivateDockerHost(name, fs.mkdtempSync(path.join(os.tmpdir(), `ridedb-docker-${name}-`)));
    if (options.tls) host.tlsPort = await freePort();
    await host.launch();
    return host;
  }

  /** A CA, a server certificate for 127.0.0.1 and a client certificate, valid for a day (made once); the daemon's TLS flags. */
  private async makeCertificates(): Promise<string[]> {
    const dir = path.join(this.dir, 'tls');
    const client = path.join(this.certPath, this.name);
    const flags = [
      `--host=tcp://127.0.0.1:${this.tlsPort}`,
      '--tlsverify',
      `--tlscacert=${path.join(dir, 'ca.pem')}`,
      `--tlscert=${path.join(dir, 'server-cert.pem')}`,
      `--tlskey=${path.join(dir, 'server-key.pem')}`,
    ];
    if (fs.existsSync(path.join(client, 'ca.pem'))) return flags;
    fs.mkdirSync(dir);
    fs.mkdirSync(client, { recursive: true });
    const at = (f: string) => path.join(dir, f);
    const openssl = (...args: string[]) => run('openssl', args);
    await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('ca-key.pem'), '-out', at('ca.pem'), '-days', '1', '-subj', '/CN=ridedb test CA');
    fs.writeFileSync(at('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    fs.writeFileSync(at('client.ext'), 'extendedKeyUsage=clientAuth\n');
    for (const [who, key, cert] of [
      ['server', at('server-key.pem'), at('server-cert.pem')],
      ['client', path.join(client, 'key.pem'), path.join(client, 'cert.pem')],
    ]) {
      await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', at(`${who}.csr`), '-subj', `/CN=${who === 'server' ? '127.0.0.1' : 'ridedb'}`);
      await openssl(
        'x509',
        '-req',
        '-in',
        at(`${who}.csr`),
        '-CA',
        at('ca.pem'),
        '-CAkey',
        at('ca-key.pem'),
        '-CAcreateserial',
        '-out',
        cert,
        '-days',
        '1',
        '-extfile',
        at(`${who}.ext`),
      );
    }
    fs.copyFileSync(at('ca.pem'), path.join(client, 'ca.pem'));
    return flags;
  }

  private async launch(): Promise<void> {
    // The machine's daemon's storage driver works here (bootstrap fell back to vfs if overlay did not).
    const driver = await run('docker', ['info', '-f', '{{.Driver}}']).then((d) => d.trim() || 'vfs');
    fs.writeFileSync(path.join(this.dir, 'daemon.json'), '{}\n');
    const tls = this.tlsPort === null ? [] : await this.makeCertificates();
    const out = fs.openSync(path.join(this.dir, 'dockerd.log'), 'a');
    const dockerd = spawn(
      'dockerd',
      [
        `--host=unix://${this.socket}`,
        ...tls,
        `--data-root=${path.join(this.dir, 'data')}`,
        `--exec-root=${path.join(this.dir, 'exec')}`,
        `--pidfile=${path.join(this.dir, 'docker.pid')}`,
        `--config-file=${path.join(this.dir, 'daemon.json')}`,
        `--storage-driver=${driver}`,
        '--iptables=false',
        '--ip6tables=false',
        '--bridge=none',
      ],
      { detached: true, stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    dockerd.unref();
    this.pid = dockerd.pid ?? null;
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (
        await this.docker.ping().then(
          () => true,
          () => false,
        )
      )
        return;
      if (this.pid === null || !isRunning(this.pid) || Date.now() > deadline) throw new Error(`private dockerd ${this.name} did not answer:\n${this.logTail()}`);
      await sleep(200);
    }
  }

  /** Copies an image from the machine's daemon into this one. */
  async loadImage(image: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const save = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'inherit'] });
      const load = spawn('docker', ['-H', `unix://${this.socket}`, 'load', '-q'], { stdio: ['pipe', 'ignore', 'inherit'] });
      save.stdout.pipe(load.stdin);
      save.on('error', reject);
      load.on('error', reject);
      load.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker load into ${this.name} exited with ${code}`))));
    });
  }

  /** Every process of this host: its dockerd and containerd (and shims, by their paths in this directory), and its containers' process trees. */
  private async processes(): Promise<number[]> {
    const containerPids: number[] = [];
    if (this.pid !== null && isRunning(this.pid)) {
      const containers = await this.docker.listContainers().catch(() => []);
      for (const c of containers) {
        const info = await this.docker
          .getContainer(c.Id)
          .inspect()
          .catch(() => null);
        if (info?.State.Pid) containerPids.push(info.State.Pid);
      }
    }
    const table = fs
      .readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map((e) => {
        try {
          const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
          const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
          return { pid: Number(e), ppid, cmdline: fs.readFileSync(`/proc/${e}/cmdline`, 'utf8') };
        } catch {
          return null; // exited while listed
        }
      })
      .filter((p): p is { pid: number; ppid: number; cmdline: string } => p !== null);
    const ours = new Set<number>([...containerPids, ...table.filter((p) => p.cmdline.includes(this.dir)).map((p) => p.pid)]);
    if (this.pid !== null) ours.add(this.pid);
    // Descendants: a worker's own PostgreSQL and its backends.
    for (let grew = true; grew;) {
      grew = false;
      for (const p of table) {
        if (!ours.has(p.pid) && ours.has(p.ppid)) {
          ours.add(p.pid);
          grew = true;
        }
      }
    }
    return [...ours];
  }

  /** The host is lost: every process of it killed at once, nothing shut down cleanly. */
  async stopHost(): Promise<void> {
    const pids = await this.processes();
    for (const pid of pids) signal(pid, 'SIGKILL');
    const deadline = Date.now() + 20_000;
    while (pids.some((p) => isRunning(p)) && Date.now() < deadline) await sleep(100);
    this.pid = null;
  }

  /** Its daemon alone stops answering (SIGSTOP), as one cut off from the gateway would; its containers run on. */
  freezeDaemon(): void {
    if (this.pid === null || !signal(this.pid, 'SIGSTOP')) throw new Error(`private dockerd ${this.name} is not running`);
  }

  thawDaemon(): void {
    if (this.pid !== null) signal(this.pid, 'SIGCONT');
  }

  /** The host comes back after a loss: its daemon starts again on the same data (its containers stay stopped). */
  async restart(): Promise<void> {
    await this.launch();
  }

  /** Stops the daemon (and whatever runs on it), unmounts what it left, and deletes the directory. */
  async remove(): Promise<void> {
    await this.stopHost();
    // Overlay mounts and the exec root's namespaces outlive a killed daemon.
    const mounts = fs
      .readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1])
      .filter((m): m is string => !!m && m.startsWith(this.dir))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await run('umount', ['-l', m]).catch((err: Error) => console.warn(`umount ${m}: ${err.message}`));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** The last lines each container with this label printed (all of them, running or not), for a failure report. */
  async recentLogs(label: string, lines: number): Promise<string> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [label] } });
    const parts: string[] = [];
    for (const c of containers) {
      const out = await this.docker.getContainer(c.Id).logs({ stdout: true, stderr: true, tail: lines });
      parts.push(`--- ${c.Names.join(',')} (${c.State}, ${c.Status})\n${demuxedText(out)}`);
    }
    return parts.join('\n');
  }

  logTail(): string {
    const log = path.join(this.dir, 'dockerd.log');
    return fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
  }
}

/** Docker's multiplexed log stream (8-byte frame headers) as plain text. */
function demuxedText(raw: Buffer): string {
  const chunks: Buffer[] = [];
  for (let at = 0; at + 8 <= raw.length;) {
    const size = raw.readUInt32BE(at + 4);
    chunks.push(raw.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${command} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}
