import { EventEmitter } from 'node:events';
import { z } from 'zod';
import { type ClusterNames, type ScalingModeName } from '../schema';
import { ZkError, type Logger, type Zk } from '../platform';

const targetSchema = z.object({
  desiredSlaves: z.number().int().min(0),
  mode: z.enum(['AUTOMATIC', 'MANUAL']),
  reason: z.string(),
  at: z.string(),
});
export type ScalingTargetValue = z.infer<typeof targetSchema>;

/**
 * The slave target and who sets it, in one znode every gateway watches: any gateway may
 * change it (an operator's scaleSlaves, the orchestrator's autoscaler), the orchestrating
 * gateway acts on it, and every gateway reports the change as SCALED_UP/SCALED_DOWN. In
 * ZooKeeper, so a manual target holds through gateway restarts and failovers.
 * Emits 'change' (next, previous) on every change seen after the first read (what a
 * gateway finds at start is the state, not a change).
 */
export class ScalingTarget extends EventEmitter {
  private value: ScalingTargetValue;
  private closed = false;
  private loaded = false;

  constructor(
    private readonly zk: Zk,
    private readonly names: ClusterNames,
    initialSlaves: number,
    private readonly log: Logger,
  ) {
    super();
    this.value = { desiredSlaves: initialSlaves, mode: 'AUTOMATIC', reason: 'initial', at: new Date().toISOString() };
  }

  get desiredSlaves(): number {
    return this.value.desiredSlaves;
  }

  get mode(): ScalingModeName {
    return this.value.mode;
  }

  async start(): Promise<void> {
    await this.zk.mkdirp(this.names.zkScaling.slice(0, this.names.zkScaling.lastIndexOf('/')) || '/');
    await this.zk.ensure(this.names.zkScaling, Buffer.from(JSON.stringify(this.value)));
    await this.watch();
  }

  close(): void {
    this.closed = true;
  }

  /** The one watcher function (the client merges it when set again): reads and re-arms. */
  private readonly changed = () =>
    this.zk.keepArmed(
      () => this.watch(),
      (err, retryInMs) => {
        if (!this.closed) this.log.warn({ err, retryInMs }, 'scaling target: watching failed; retrying');
      },
    );

  private async watch(): Promise<void> {
    if (this.closed) return;
    const got = await this.zk.getData(this.names.zkScaling, this.changed);
    if (!got) return;
    this.adopt(got.data);
  }

  private adopt(data: Buffer): void {
    let parsed: ScalingTargetValue;
    try {
      parsed = targetSchema.parse(JSON.parse(data.toString()));
    } catch (err) {
      this.log.warn({ err }, 'unreadable scaling target znode; keeping the last one');
      return;
    }
    const previous = this.value;
    this.value = parsed;
    const first = !this.loaded;
    this.loaded = true;
    if (first) return;
    if (parsed.desiredSlaves !== previous.desiredSlaves || parsed.mode !== previous.mode) this.emit('change', parsed, previous);
  }

  /** Changes the target with a versioned write; `update` sees the latest value. */
  async set(update: (current: ScalingTargetValue) => Omit<ScalingTargetValue, 'at'> | null): Promise<ScalingTargetValue> {
    for (;;) {
      const got = await this.zk.getData(this.names.zkScaling);
      if (!got) throw new ZkError('NO_NODE', `${this.names.zkScaling} does not exist`);
      const current = targetSchema.parse(JSON.parse(got.data.toString()));
      const next = update(current);
      if (!next) return current;
      const value = { ...next, at: new Date().toISOString() };
      try {
        await this.zk.setData(this.names.zkScaling, Buffer.from(JSON.stringify(value)), got.version);
        this.adopt(Buffer.from(JSON.stringify(value)));
        return value;
      } catch (err) {
        if (!(err instanceof ZkError && err.code === 'BAD_VERSION')) throw err;
      }
    }
  }
}
