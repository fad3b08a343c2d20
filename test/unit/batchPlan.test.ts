import { planBatch, type LoggedWrite, type WriteJob } from '../../worker/batchPlan';

// The master's planning step, without a database (worker/batchPlan.ts).
const job = (requestId: string, op: string, fingerprint?: string): WriteJob => ({ kind: 'write', request: { requestId, op, args: {}, ...(fingerprint && { fingerprint }) } });
const many = (op: string) => op === 'createRide';
const ids = (jobs: WriteJob[]) => jobs.map((j) => j.request.requestId);

describe('planning a write batch', () => {
  it('groups consecutive writes of an operation that resolves many, and only those', () => {
    const plan = planBatch([job('a', 'createRide'), job('b', 'createRide'), job('c', 'joinRide'), job('d', 'joinRide'), job('e', 'createRide')], new Map(), many);
    expect(plan.runs.map((r) => [r.op, ids(r.jobs)])).toEqual([
      ['createRide', ['a', 'b']],
      ['joinRide', ['c']],
      ['joinRide', ['d']],
      ['createRide', ['e']],
    ]);
    expect(plan.answered).toEqual([]);
    expect(plan.followers).toEqual([]);
  });

  it('answers a request id already in the log with its logged answer, and runs it no more', () => {
    const logged = new Map<string, LoggedWrite>([['a', { result: { id: 7 }, seq: 7, fingerprint: null }]]);
    const plan = planBatch([job('a', 'createRide'), job('b', 'createRide')], logged, many);
    expect(plan.answered).toEqual([
      { job: expect.objectContaining({ request: expect.objectContaining({ requestId: 'a' }) }), answer: { kind: 'logged', logged: logged.get('a') } },
    ]);
    expect(plan.runs.map((r) => ids(r.jobs))).toEqual([['b']]);
  });

  it('makes a repeat within the batch follow the first, and keeps the runs around it together', () => {
    const first = job('a', 'createRide');
    const plan = planBatch([first, job('a', 'createRide'), job('b', 'createRide')], new Map(), many);
    expect(plan.followers).toEqual([{ job: expect.objectContaining({ request: expect.objectContaining({ requestId: 'a' }) }), leader: first }]);
    expect(plan.runs.map((r) => ids(r.jobs))).toEqual([['a', 'b']]);
  });

  it('refuses an Idempotency-Key reused with other arguments, against the log and within the batch', () => {
    const logged = new Map<string, LoggedWrite>([['k1', { result: null, seq: 3, fingerprint: 'f1' }]]);
    const plan = planBatch([job('k1', 'createRide', 'other'), job('k2', 'createRide', 'f2'), job('k2', 'createRide', 'f3'), job('k1', 'createRide', 'f1')], logged, many);
    expect(plan.answered.map((a) => [a.job.request.requestId, a.job.request.fingerprint, a.answer.kind])).toEqual([
      ['k1', 'other', 'keyReused'],
      ['k2', 'f3', 'keyReused'],
      ['k1', 'f1', 'logged'],
    ]);
    expect(plan.runs.map((r) => ids(r.jobs))).toEqual([['k2']]);
  });
});
