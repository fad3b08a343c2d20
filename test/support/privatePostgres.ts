import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import pino from 'pino';
import { isRunning, runningPostmaster, stopPostmaster, type WorkerStoragePaths } from '../../platform';
import { initdb, runAs } from '../../worker/ownPostgres';
import { findPostgresBinaries, systemUser, type PostgresBinaries } from '../../worker/postgresInstall';
import { freePort, sleep } from './cluster';
import { signal } from './privateZookeeper';

const READY_TIMEOUT_MS = 60_000;

/**
 * A PostgreSQL of a test's own, so a test can stop or restart it without going near the
 * machine's shared server: initdb'd (trust auth) into a temporary directory with the
 * binaries and code a dedicated worker uses (worker/ownPostgres.ts), run as the
 * `postgres` system user when this is root (postgres refuses root), listening on
 * 127.0.0.1 on a free port, its unix socket and `postgres.log` in the same directory.
 * `remove()` stops it and deletes the directory.
 */
export class PrivatePostgres {
  readonly paths: WorkerStoragePaths;
  /** Server URL, database `postgres`: what DATABASE_URL takes. */
  readonly url: string;
  private readonly binaries: PostgresBinaries;
  private readonly owner: { uid: number; gid: number } | null;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {
    this.paths = { workerDir: dir, dataDir: path.join(dir, 'pgdata'), socketDir: dir, logFile: path.join(dir, 'postgres.log') };
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    this.binaries = findPostgresBinaries();
    this.owner = process.getuid?.() === 0 ? systemUser('postgres') : null;
  }

  /** Creates the data directory (initdb); nothing runs yet. */
  static async prepare(): Promise<PrivatePostgres> {
    const pg = new PrivatePostgres(fs.mkdtempSync(path.join(os.tmpdir(), 'ridedb-pg-')), await freePort());
    try {
      // initdb writes its staging directory beside pgdata, as the instance's owner.
      if (pg.owner) fs.chownSync(pg.dir, pg.owner.uid, pg.owner.gid);
      await initdb(pg.paths, pg.binaries, pg.owner, pino({ level: 'silent' }));
    } catch (err) {
      fs.rmSync(pg.dir, { recursive: true, force: true });
      throw err;
    }
    return pg;
  }

  /** Starts the postmaster in a session of its own and waits until it accepts connections. */
  async start(): Promise<void> {
    if (runningPostmaster(this.paths.dataDir) !== null) return;
    const out = fs.openSync(this.paths.logFile, 'a');
    const settings = ['listen_addresses=127.0.0.1', `port=${this.port}`, 'log_checkpoints=off'];
    const child = spawn(this.binaries.postgres, ['-D', this.paths.dataDir, '-k', this.paths.socketDir, ...settings.flatMap((s) => ['-c', s])], {
      ...runAs(this.owner),
      detached: true,
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    child.unref();
    let exited = false;
    child.once('exit', () => (exited = true));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await this.answers())) {
      if (exited || Date.now() > deadline) {
        // Still starting (or hung): ended by its pid, the one process this call started.
        if (!exited && child.pid) {
          signal(child.pid, 'SIGQUIT');
          for (let i = 0; i < 100 && isRunning(child.pid); i++) await sleep(100);
          if (isRunning(child.pid)) signal(child.pid, 'SIGKILL');
        }
        throw new Error(`the private PostgreSQL on port ${this.port} did not start:\n${this.logTail()}`);
      }
      await sleep(100);
    }
  }

  /** True if the server accepts a connection and runs a query. */
  async answers(): Promise<boolean> {
    const client = new Client({ connectionString: this.url, connectionTimeoutMillis: 2000 });
    // A probe: whether the query ran is the answer; the client's errors and a failed close
    // say nothing more about the server.
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false; // refused, timed out or failed: the server is not answering
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Fast shutdown (a checkpoint: nothing committed is lost), waiting until the postmaster is gone. */
  async stop(): Promise<void> {
    await stopPostmaster(this.paths.dataDir, 'fast', 30_000);
  }

  /** What `pg_ctl restart` does: a fast shutdown, then a start. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops the instance (immediate: it is thrown away) and deletes its directory. */
  async remove(): Promise<void> {
    await stopPostmaster(this.paths.dataDir, 'immediate');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private logTail(): string {
    try {
      return fs.readFileSync(this.paths.logFile, 'utf8').split('\n').slice(-15).join('\n');
    } catch (err) {
      return `(no ${this.paths.logFile}: ${(err as Error).message})`;
    }
  }
}
