import schedule, { type Job } from 'node-schedule';
import type { ScalingModeName } from '../schema';
import type { Config, Logger } from '../platform';
import { checkSlaveCount, type Orchestrator } from './orchestrator';

/** docs/contract.md section 5: target slaves = clamp(ceil(reads in the last interval / READS_PER_SLAVE), MIN, MAX). */
export function targetSlaves(reads: number, config: Pick<Config, 'readsPerSlave' | 'minSlaves' | 'maxSlaves'>): number {
  return Math.min(config.maxSlaves, Math.max(config.minSlaves, Math.ceil(reads / config.readsPerSlave)));
}

/**
 * Sizes the slaves by read load. A node-schedule job runs every SCALE_INTERVAL_SECONDS,
 * starting with the first read, and asks the orchestrator for the computed target.
 * An operator's target (`hold`) switches it to MANUAL: it keeps counting reads but
 * leaves the slaves alone until `resume` returns it to AUTOMATIC.
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

  /** An operator's slave target, held until `resume`. A refused count changes nothing. */
  async hold(count: number): Promise<void> {
    checkSlaveCount(count, this.config);
    await this.orchestrator.scaleSlaves(count, 'manual scaleSlaves', 'MANUAL');
  }

  /** Back to automatic: the next tick sizes the slaves by the reads of its interval. */
  async resume(): Promise<void> {
    await this.orchestrator.automaticScaling();
    this.log.info({ desiredSlaves: this.orchestrator.desiredSlaves }, 'scaling back to automatic');
  }

  /** The mode of the cluster's shared target (gateway/scalingTarget.ts). */
  get mode(): ScalingModeName {
    return this.orchestrator.scalingMode;
  }

  private async tick(): Promise<void> {
    const reads = this.readsThisInterval;
    this.readsThisInterval = 0;
    const target = targetSlaves(reads, this.config);
    // Only the orchestrating gateway sizes the cluster; an operator's target is left alone
    // (checked in the same versioned write, so one set meanwhile wins).
    if (this.orchestrator.orchestrating && this.mode === 'AUTOMATIC' && target !== this.orchestrator.desiredSlaves) {
      try {
        await this.orchestrator.scaleSlaves(target, `${reads} reads in the last ${this.config.scaleIntervalSeconds}s (${this.config.readsPerSlave} per slave)`, 'AUTOMATIC', {
          unlessManual: true,
        });
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
