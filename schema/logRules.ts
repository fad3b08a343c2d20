import type { WriteEntry } from './messages';

/** Where a reader of the log stands: the last seq it took, and the highest epoch seen. */
export interface LogPosition {
  appliedSeq: number;
  epoch: number;
}

/**
 * What a reader of the log does with the next write entry in stream order, the rule every
 * replica and the gateway's live feed follow alike: an entry of a fenced-off master (an
 * older epoch) or one already taken is skipped; the next seq is taken; anything else is
 * a gap (entries missing from the stream).
 */
export function entryVerdict(at: LogPosition, entry: Pick<WriteEntry, 'seq' | 'epoch'>): 'take' | 'skip' | 'gap' {
  if (entry.epoch < at.epoch || entry.seq <= at.appliedSeq) return 'skip';
  return entry.seq === at.appliedSeq + 1 ? 'take' : 'gap';
}
