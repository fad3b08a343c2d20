import { latestPerRequestId } from '../../worker/replica';
import { entry } from './logEntries';

describe('the log table rows of a run of entries', () => {
  it('are the entries themselves when every request id is new', () => {
    const entries = [entry(1, 'createRide', {}), entry(2, 'createRide', {})];
    expect(latestPerRequestId(entries)).toBe(entries);
  });

  it('keep only the later write of a request id reused past the idempotency window, in seq order', () => {
    const reused = { ...entry(5, 'createRide', {}), requestId: 'r1' };
    const seqs = latestPerRequestId([entry(1, 'createRide', {}), entry(2, 'createRide', {}), reused, entry(6, 'createRide', {})]).map((e) => e.seq);
    expect(seqs).toEqual([2, 5, 6]);
  });
});
