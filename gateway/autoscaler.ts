import schedule, { type Job } from 'node-schedule';
import type { Config, Logger } from '../schema';
import type { Orchestrator } from './orchestrator';


/** DESIGN 5: target slaves = clamp(ceil(reads in the last interval / READS_PER_SLAVE), MIN, MAX). */
export function targetSlaves(reads: number, config: Pick<Config, 'readsPerSlave' | 'minSlaves' | 'maxSlaves'>): number {
  return Math.min(config.maxSlaves, Math.max(config.minSlaves, Math.ceil(reads / config.readsPerSlave)));
}

/**
 * Sizes the slaves by read load. A node-schedule job runs every SCALE_INTERVAL_SECONDS,
 * starting with the first read, and asks the orchestrator for the computed target.
 */
export class Autoscaler {
  readsThisInterval = 0;
  private job: Job | null = null;
  private stopped = false;

  constructor(
    private readonly orchestrator: Orchestrator,
    private readonly config: Config,
    private readonly log: Logger,
  ) {}

  noteRead(): void {
    this.readsThisInterval++;
    if (!this.job && !this.stopped) this.scheduleNext();
  }

  private scheduleNext(): void {
    // One-off jobs chained, because cron rules cannot express every period in seconds.
    this.job = schedule.scheduleJob(new Date(Date.now() + this.config.scaleIntervalSeconds * 1000), () => void this.tick());
  }

  private async tick(): Promise<void> {
    const reads = this.readsThisInterval;
    this.readsThisInterval = 0;
    const target = targetSlaves(reads, this.config);
    if (target !== this.orchestrator.desiredSlaves) {
      try {
        await this.orchestrator.scaleSlaves(target, `${reads} reads in the last ${this.config.scaleIntervalSeconds}s (${this.config.readsPerSlave} per slave)`);
      } catch (err) {
        this.log.error({ err, target }, 'autoscaling failed');
      }
    }
    if (!this.stopped) this.scheduleNext();
  }

  stop(): void {
    this.stopped = true;
    this.job?.cancel();
  }
}
