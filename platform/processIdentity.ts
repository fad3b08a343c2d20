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

/**
 * Whether this process's /proc shows its own pid namespace: not so in a namespace entered
 * without mounting its /proc (`unshare -p`), where every pid read there is another's.
 */
function procIsOurs(): boolean {
  try {
    return fs.readlinkSync('/proc/self') === String(process.pid);
  } catch (err) {
    if (err instanceof Error && 'code' in err) return false; // no /proc at all
    throw err;
  }
}

/**
 * A pid's state (`Z`: a zombie) and start time, from /proc: null when no such process runs;
 * undefined when that cannot be told (no /proc of this pid namespace, or hidden: another
 * user's process under `hidepid`).
 */
export function processStat(pid: number | 'self'): { state: string; startTicks: number } | null | undefined {
  if (process.platform !== 'linux' || !procIsOurs()) return undefined;
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return isSignalable(pid) ? undefined : null; // hidepid=2 hides a live one
    if (code === 'EACCES' || code === 'EPERM') return undefined;
    throw err;
  }
  // Fields after the command name, which is parenthesised and may hold spaces and ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], startTicks: Number(fields[19]) };
}

/** Whether a pid is taken (signal 0 checks without signalling; EPERM: another user's). */
function isSignalable(pid: number | 'self'): boolean {
  if (pid === 'self') return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a process runs. A zombie does not: an adopted worker's parent, the gateway that
 * died, left it to the machine's init to reap, and an init that reaps late (a
 * container's, this sandbox's) kept a killed master "alive" for seconds, and its
 * successor unelected. Where /proc cannot tell, a taken pid counts as running.
 */
export function isProcessRunning(pid: number): boolean {
  if (!isSignalable(pid)) return false;
  const stat = processStat(pid);
  return stat === undefined || (stat !== null && stat.state !== 'Z' && stat.state !== 'X');
}

/** This process's identity, or null where it cannot be told for sure (not Linux, /proc not this namespace's, unreadable). */
let ownIdentity: ProcessIdentity | null | undefined;

export function ownProcessIdentity(): ProcessIdentity | null {
  if (ownIdentity === undefined) ownIdentity = readOwnIdentity();
  return ownIdentity;
}

function readOwnIdentity(): ProcessIdentity | null {
  try {
    const own = processStat('self');
    if (!own) return null;
    return {
      bootId: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      pidNamespace: fs.readlinkSync('/proc/self/ns/pid'),
      pid: process.pid,
      startTicks: own.startTicks,
    };
  } catch (err) {
    if (err instanceof Error && 'code' in err) return null; // a file of /proc missing or unreadable
    throw err;
  }
}

/**
 * True only when `other` surely no longer runs: it was on this machine since its last boot,
 * in this pid namespace, and its pid is free, a zombie, or another process's now.
 * Anything else — another machine, container or boot, no identity, a process this one
 * cannot see — is false.
 */
export function isSurelyGone(other: ProcessIdentity): boolean {
  const own = ownProcessIdentity();
  if (!own || own.bootId !== other.bootId || own.pidNamespace !== other.pidNamespace) return false;
  const now = processStat(other.pid);
  if (now === undefined) return false;
  return now === null || now.state === 'Z' || now.state === 'X' || now.startTicks !== other.startTicks;
}
