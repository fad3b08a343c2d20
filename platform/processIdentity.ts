import fs from 'node:fs';
import { z } from 'zod';

/**
 * Who a process is, so another process can later tell for sure that it is gone: a pid
 * alone may belong to another pid namespace (a container) or have been reused. Linux
 * only; elsewhere there is none, and nothing is ever judged gone.
 */
export const processIdentitySchema = z.object({
  /** The kernel's boot id: pids and start times mean nothing across reboots. */
  bootId: z.string(),
  /** The pid namespace (`/proc/self/ns/pid`): the same pid in another one is another process. */
  pidNamespace: z.string(),
  pid: z.number().int(),
  /** When the process started, in clock ticks since boot (`/proc/<pid>/stat`, field 22). */
  startTicks: z.number(),
});
export type ProcessIdentity = z.infer<typeof processIdentitySchema>;

/** A pid's state (`Z`: a zombie) and start time, from /proc; null when no such process runs. */
export function processStat(pid: number | 'self'): { state: string; startTicks: number } | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  // Fields after the command name, which is parenthesised and may hold spaces and ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], startTicks: Number(fields[19]) };
}

export function ownProcessIdentity(): ProcessIdentity | null {
  if (process.platform !== 'linux') return null;
  const own = processStat('self');
  if (!own) return null;
  return {
    bootId: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    pidNamespace: fs.readlinkSync('/proc/self/ns/pid'),
    pid: process.pid,
    startTicks: own.startTicks,
  };
}

/**
 * True only when `other` surely no longer runs: it was on this machine since its last boot,
 * in this pid namespace, and its pid is free, a zombie, or another process's now.
 * Anything else — another machine, container or boot, or no identity — is false.
 */
export function isSurelyGone(other: ProcessIdentity): boolean {
  const own = ownProcessIdentity();
  if (!own || own.bootId !== other.bootId || own.pidNamespace !== other.pidNamespace) return false;
  const now = processStat(other.pid);
  return !now || now.state === 'Z' || now.state === 'X' || now.startTicks !== other.startTicks;
}
