import { randomBytes } from 'node:crypto';
import { runForLeadership } from '../platform';
import { zkSessions } from './support/zkSessions';
import { waitUntil } from './support/cluster';

// The election recipe both workers (the master) and gateways (the orchestrator) use.
const directory = `/t_election_${randomBytes(4).toString('hex')}/candidates`;
const { connect, close } = zkSessions();
afterAll(() => close(directory.slice(0, directory.lastIndexOf('/'))));

describe('the election', () => {
  it('tells a leader whose candidacy someone removed that it lost, and elects the next candidate', async () => {
    const seen: string[] = [];
    const candidate = async (id: string) =>
      runForLeadership(await connect(), directory, id, {
        onElected: async () => void seen.push(`${id} elected`),
        onLost: (reason) => void seen.push(`${id} lost: ${reason}`),
      });
    const first = await candidate('a');
    await candidate('b');
    await waitUntil('a elected', async () => seen.includes('a elected'));
    const other = await connect();
    await other.remove(`${directory}/${first.node}`);
    await waitUntil('a told, b elected', async () => seen.includes('a lost: election candidacy znode was removed') && seen.includes('b elected'), 10_000);
    expect([...seen].sort()).toEqual(['a elected', 'a lost: election candidacy znode was removed', 'b elected']);
  });
});
