import { randomUUID } from 'node:crypto';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { encode, type LogMessage } from '../schema';
import type { Logger } from '../platform';
import { publishBody } from './logMessages';
import type { Replica } from './replica';

/**
 * The epoch a worker with no master puts on its marker. Every reader of the log keeps the
 * highest epoch it has seen, and every master's epoch is at least 1, so this marker
 * changes nobody's epoch (schema/logRules.ts).
 */
const CATCH_UP_EPOCH = 1;

/**
 * Appends an epoch marker of this worker's own to the log and resolves once its tail has
 * applied it: everything the log held before the marker is then applied here. A new
 * master's fence (worker/master.ts) and a worker that starts with no master both end
 * their catch-up this way; no silence or timeout decides it.
 */
export async function readToOwnMarker(channel: ConfirmChannel, exchange: string, replica: Replica, marker: { epoch: number; workerId: string }): Promise<void> {
  const markerId = randomUUID();
  const seen = replica.waitForMarker(markerId);
  const body: LogMessage = { kind: 'epoch', epoch: marker.epoch, workerId: marker.workerId, markerId };
  await publishBody(channel, exchange, encode(body), undefined);
  await seen;
}

/**
 * For a worker that starts while no master advertises its position (a whole new set of
 * workers after every one was lost, or one started during an election): applies the log
 * to its end before the worker joins ReadQ (docs/contract.md, guarantee 6), the end being
 * a marker it appends itself.
 */
export async function catchUpToLogEnd(connection: ChannelModel, exchange: string, replica: Replica, workerId: string, log: Logger): Promise<void> {
  log.info({ from: replica.appliedSeq }, 'no master: catching up to a marker of its own at the end of the log');
  const channel = await connection.createConfirmChannel();
  const progress = setInterval(() => log.info({ appliedSeq: replica.appliedSeq }, 'catching up'), 1000);
  try {
    await readToOwnMarker(channel, exchange, replica, { epoch: CATCH_UP_EPOCH, workerId });
  } finally {
    clearInterval(progress);
    await channel.close();
  }
}
