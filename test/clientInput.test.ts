import { TestCluster } from './support/cluster';
import { RawSocket } from './support/rawSocket';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await cluster?.stop();
});

describe('what a client sends', () => {
  it('an unknown area on a read is BAD_USER_INPUT (GraphQL) and 400 (REST), on every path', async () => {
    const compiled = await cluster.gql('{ rides(source: 999, destination: 1) { id } }');
    expect(compiled.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(compiled.errors?.[0].message).toMatch(/unknown area 999/);
    const withVariables = await cluster.gql('query R($s: Int!) { rides(source: $s, destination: 1) { id } cluster { epoch } }', { s: 0 });
    expect(withVariables.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const rest = await fetch(`${cluster.url}/api/v1/rides?source=999&destination=1`);
    expect(rest.status).toBe(400);
    expect(await rest.json()).toMatchObject({ error: { code: 'BAD_USER_INPUT' } });
    expect((await fetch(`${cluster.url}/api/v1/rides?source=198&destination=1`)).status).toBe(204);
  });

  it('variables nested deeper than the stack are answered, not a 500', async () => {
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const res = await fetch(`${cluster.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"query":"{ areas { id } }","variables":{"a":${deep}}}`,
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { data: { areas: unknown[] } }).data.areas).toHaveLength(198);
  });

  it('the original 198 areas are served', async () => {
    const { areas } = await cluster.data<{ areas: Array<{ id: number; name: string }> }>('{ areas { id name } }');
    expect(areas).toHaveLength(198);
    expect(areas[0]).toEqual({ id: 1, name: 'Kempegowda Ward' });
    expect(areas[197]).toEqual({ id: 198, name: 'Hemmigepura' });
  });

  it('a malformed X-DBaaS-Min-Seq or X-DBaaS-Consistency is 400, not ignored', async () => {
    const cases: Array<Record<string, string>> = [{ 'x-dbaas-min-seq': 'abc' }, { 'x-dbaas-min-seq': '-1' }, { 'x-dbaas-min-seq': '1.5' }, { 'x-dbaas-consistency': 'sometimes' }];
    for (const headers of cases) {
      const res = await cluster.gql('{ rideCount }', {}, headers);
      expect(res.status).toBe(400);
      expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      const rest = await fetch(`${cluster.url}/api/v1/rides/count`, { headers });
      expect(rest.status).toBe(400);
    }
    expect((await cluster.gql('{ rideCount }', {}, { 'x-dbaas-min-seq': '0' })).data).toEqual({ rideCount: 0 });
  });

  it('the schema can be introspected under the environment npm start gives the gateway', async () => {
    const res = await cluster.gql<{ __schema: { queryType: { name: string } } }>('{ __schema { queryType { name } } }');
    expect(res.errors).toBeUndefined();
    expect(res.data?.__schema.queryType.name).toBe('Query');
  });
});

describe('GRAPHQL_INTROSPECTION=off', () => {
  it('refuses introspection and still serves data', async () => {
    const locked = await TestCluster.start({ GRAPHQL_INTROSPECTION: 'off' });
    try {
      const res = await locked.gql('{ __schema { queryType { name } } }');
      expect(res.errors?.[0].message).toMatch(/introspection/i);
      expect((await locked.gql('{ __type(name: "Ride") { name } }')).errors).toBeDefined();
      expect(await locked.data('{ rideCount }')).toEqual({ rideCount: 0 });
      // The same over the websocket.
      const socket = await RawSocket.open(locked.url);
      socket.subscribe('schema', '{ __schema { queryType { name } } }');
      const answer = await socket.next((m) => m.id === 'schema');
      socket.close();
      expect(answer.type).toBe('error');
      expect(JSON.stringify(answer.payload)).toMatch(/introspection/i);
    } finally {
      await locked.stop();
    }
  });
});
