import fs from 'node:fs';
import path from 'node:path';

/** The installed PostgreSQL server binaries a dedicated worker runs. */
export interface PostgresBinaries {
  initdb: string;
  postgres: string;
}

const DEBIAN_ROOT = '/usr/lib/postgresql';

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EACCES') return false;
    throw err;
  }
}

/**
 * Finds initdb and postgres: Debian's newest `/usr/lib/postgresql/<major>/bin` (also the
 * layout of the official postgres images), else the PATH. Neither is on the PATH on
 * Debian, where only wrappers (pg_ctlcluster) are.
 */
export function findPostgresBinaries(): PostgresBinaries {
  const majors = fs.existsSync(DEBIAN_ROOT)
    ? fs
        .readdirSync(DEBIAN_ROOT)
        .filter((d) => /^\d+$/.test(d))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const dirs = [...majors.map((m) => path.join(DEBIAN_ROOT, m, 'bin')), ...(process.env.PATH ?? '').split(':').filter(Boolean)];
  for (const dir of dirs) {
    const found = { initdb: path.join(dir, 'initdb'), postgres: path.join(dir, 'postgres') };
    if (executable(found.initdb) && executable(found.postgres)) return found;
  }
  throw new Error(`WORKER_STORAGE=dedicated needs PostgreSQL's initdb and postgres (${DEBIAN_ROOT}/<major>/bin or the PATH): apt-get install postgresql`);
}

/** uid and gid of a system user, from /etc/passwd (no getpwnam in node; the worker image has no `id`). */
export function systemUser(name: string): { uid: number; gid: number } {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  if (!line) throw new Error(`there is no system user ${name} (/etc/passwd)`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}
