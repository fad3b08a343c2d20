import { PASSWORD, TestCluster } from './support/cluster';

// Small pages, so a few hundred rows span many of them.
const DEFAULT = 30;
const MAX = 50;
let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ PAGE_SIZE_DEFAULT: String(DEFAULT), PAGE_SIZE_MAX: String(MAX) });
});
afterAll(async () => {
  await cluster?.stop();
});

const RIDES = 130;
const hour = 3_600_000;
let created: number[] = [];

beforeAll(async () => {
  await cluster.data('mutation($p: String!) { a: createUser(username: "pager", password: $p) { username } b: createUser(username: "rider", password: $p) { username } }', {
    p: PASSWORD,
  });
  // Past and upcoming rides; several share a timestamp, so the order falls back to the id.
  const times = Array.from({ length: RIDES }, (_, i) => new Date(Date.now() + (i - 40) * hour).toISOString());
  for (let i = 0; i < RIDES; i += 20) {
    const batch = await Promise.all(
      times.slice(i, i + 20).map((ts, k) =>
        cluster.data<{ createRide: { id: number } }>('mutation($ts: DateTimeISO!) { createRide(createdBy: "pager", timestamp: $ts, source: 7, destination: 9) { id } }', {
          ts: k % 4 === 0 && i + k > 0 ? times[i + k - 1] : ts,
        }),
      ),
    );
    created.push(...batch.map((b) => b.createRide.id));
  }
  for (const id of created.slice(0, 5)) await cluster.data('mutation($id: Int!) { joinRide(rideId: $id, username: "rider") { id } }', { id });
  created = created.sort((a, b) => a - b);
});

interface Page {
  id: number;
  cursor: string;
  timestamp: string;
}

/** Walks a list page by page; `extra` adds a cluster field, which sends the query down the resolver path. */
async function walk(list: (after: string | null) => Promise<Page[]>): Promise<Page[]> {
  const all: Page[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await list(after);
    expect(page.length).toBeLessThanOrEqual(MAX);
    all.push(...page);
    if (page.length < MAX) return all;
    after = page[page.length - 1].cursor;
  }
}

const byTimeThenId = (a: Page, b: Page) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : a.id - b.id);
const PATHS = [
  ['compiled', ''],
  ['resolvers', 'cluster { epoch }'],
] as const;

describe.each(PATHS)('pages (%s path)', (path, extra) => {
  it('is answered by that path', async () => {
    const res = await cluster.gql<{ rides: Page[] }>(`{ rides(source: 7, destination: 9, first: 3) { id } ${extra} }`);
    expect((res.extensions as { dbaas: { plan: string } }).dbaas.plan).toBe(path);
    expect(res.data?.rides).toHaveLength(3);
  });

  it("walks a route's whole history exactly once, in order", async () => {
    const rides = await walk(async (after) => {
      const res = await cluster.data<{ rides: Page[] }>(
        `query($after: String) { rides(source: 7, destination: 9, upcomingOnly: false, first: ${MAX}, after: $after) { id cursor timestamp } ${extra} }`,
        { after },
      );
      return res.rides;
    });
    expect(rides.map((r) => r.id).sort((a, b) => a - b)).toEqual(created);
    expect(rides).toEqual([...rides].sort(byTimeThenId));
  });

  it("walks a user's rides by the same cursor", async () => {
    const rides = await walk(async (after) => {
      const res = await cluster.data<{ user: { ridesCreated: Page[] } }>(
        `query($after: String) { user(username: "pager") { ridesCreated(first: ${MAX}, after: $after) { id cursor timestamp } } ${extra} }`,
        { after },
      );
      return res.user.ridesCreated;
    });
    expect(rides.map((r) => r.id).sort((a, b) => a - b)).toEqual(created);
    expect(rides).toEqual([...rides].sort(byTimeThenId));
  });

  it('answers PAGE_SIZE_DEFAULT rows without `first` and refuses more than PAGE_SIZE_MAX', async () => {
    const res = await cluster.data<{ rides: Page[]; user: { ridesCreated: Page[] } }>(
      `{ rides(source: 7, destination: 9, upcomingOnly: false) { id } user(username: "pager") { ridesCreated { id riders(first: 2) { username } } } ${extra} }`,
    );
    expect(res.rides).toHaveLength(DEFAULT);
    expect(res.user.ridesCreated).toHaveLength(DEFAULT);
    const tooMany = await cluster.gql(`{ rides(source: 7, destination: 9, first: ${MAX + 1}) { id } ${extra} }`);
    expect(tooMany.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(tooMany.errors?.[0].message).toMatch(/PAGE_SIZE_MAX/);
    const badCursor = await cluster.gql(`{ rides(source: 7, destination: 9, after: "not-a-cursor") { id } ${extra} }`);
    expect(badCursor.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
  });

  it('pages users by username', async () => {
    const names: string[] = [];
    let after: string | null = null;
    for (;;) {
      const res: { users: Array<{ username: string }> } = await cluster.data(`query($after: String) { users(first: 1, after: $after) { username } ${extra} }`, { after });
      if (!res.users.length) break;
      names.push(res.users[0].username);
      after = res.users[0].username;
    }
    expect(names).toEqual(['pager', 'rider']);
  });
});

describe('the REST lists', () => {
  it('answer at most PAGE_SIZE_MAX rows and say when the list may go on', async () => {
    const res = await fetch(`${cluster.url}/api/v1/rides?source=7&destination=9`);
    expect(res.status).toBe(200);
    expect((await res.json()) as unknown[]).toHaveLength(MAX);
    expect(res.headers.get('x-dbaas-page-limit')).toBe(String(MAX));
    expect(res.headers.get('x-dbaas-truncated')).toBe('true');
    const users = await fetch(`${cluster.url}/api/v1/users`);
    expect((await users.json()) as unknown[]).toEqual(['pager', 'rider']);
    expect(users.headers.get('x-dbaas-truncated')).toBeNull();
  });
});
