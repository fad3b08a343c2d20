import { decode, entriesOf, logMessageSchema } from '../../schema';
import { logMessagesOf } from '../../worker/logMessages';
import { entry } from './logEntries';

const seqsOf = (body: Buffer) => entriesOf(decode(logMessageSchema, body)).map((e) => (e.kind === 'write' ? e.seq : null));

describe("a master batch's log messages", () => {
  const entries = Array.from({ length: 40 }, (_, k) => entry(101 + k, 'createUser', { username: `user_${k}`, pad: 'x'.repeat(k % 7 === 0 ? 3000 : 100) }));

  it('are one message, encoded once, when the batch fits', () => {
    const messages = logMessagesOf(entries, 1 << 20);
    expect(messages).toHaveLength(1);
    expect(messages[0].lastSeq).toBe(140);
    expect(seqsOf(messages[0].body)).toEqual(entries.map((e) => e.seq));
  });

  it('are split, in seq order and with each message under the bound, when it does not', () => {
    const messages = logMessagesOf(entries, 4000);
    expect(messages.length).toBeGreaterThan(1);
    for (const m of messages) expect(m.body.length).toBeLessThanOrEqual(4000);
    expect(messages.flatMap((m) => seqsOf(m.body))).toEqual(entries.map((e) => e.seq));
    for (const m of messages) expect(m.lastSeq).toBe(seqsOf(m.body).at(-1));
  });

  it('carry an entry larger than the bound alone rather than refuse it', () => {
    const messages = logMessagesOf(entries, 1000);
    const alone = messages.filter((m) => m.body.length > 1000);
    expect(alone.length).toBe(entries.filter((_, k) => k % 7 === 0).length);
    for (const m of alone) expect(seqsOf(m.body)).toHaveLength(1);
    expect(messages.flatMap((m) => seqsOf(m.body))).toEqual(entries.map((e) => e.seq));
  });
});
