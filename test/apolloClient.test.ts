import type * as ApolloCore from '@apollo/client/core' with { 'resolution-mode': 'import' };
import type * as ApolloSubscriptions from '@apollo/client/link/subscriptions' with { 'resolution-mode': 'import' };
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { PASSWORD, TestCluster, waitUntil } from './support/cluster';

// @apollo/client 3 ships CommonJS builds, but TypeScript (node16) reaches its types as ES
// modules only: types imported as such, code required.
/* eslint-disable @typescript-eslint/no-require-imports */
const { ApolloClient, gql, InMemoryCache } = require('@apollo/client/core') as typeof ApolloCore;
const { GraphQLWsLink } = require('@apollo/client/link/subscriptions') as typeof ApolloSubscriptions;
/* eslint-enable @typescript-eslint/no-require-imports */

// The README's Apollo Client example, as a client would run it: GraphQLWsLink, resuming
// with the last seq after the subscription ends.
let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start();
  await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'apollo', p: PASSWORD });
});
afterAll(async () => {
  await cluster?.stop();
});

const LIVE = gql`
  subscription ($s: Int!, $d: Int!, $after: Int, $afterRide: Int) {
    rides(source: $s, destination: $d, afterSeq: $after, afterRideId: $afterRide) {
      type
      seq
      rideId
      ride {
        id
        timestamp
      }
      rides {
        id
      }
    }
  }
`;

interface Message {
  rides: { type: string; seq: number; rideId: number | null };
}

it('Apollo Client follows a route over GraphQLWsLink and resumes after its last seq', async () => {
  const wsClient = createClient({ url: `${cluster.url.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket });
  const client = new ApolloClient({ link: new GraphQLWsLink(wsClient), cache: new InMemoryCache() });
  const create = async (day: number) =>
    (await cluster.data<{ createRide: { id: number } }>(`mutation { createRide(createdBy: "apollo", timestamp: "2042-03-${day}T00:00:00Z", source: 41, destination: 42) { id } }`))
      .createRide.id;
  try {
    const seen: Message['rides'][] = [];
    const first = client.subscribe<Message>({ query: LIVE, variables: { s: 41, d: 42, after: null } }).subscribe({ next: ({ data }) => data && seen.push(data.rides) });
    await waitUntil('the snapshot', async () => seen.length >= 1 || undefined);
    const a = await create(10);
    await waitUntil('the change', async () => seen.length >= 2 || undefined);
    first.unsubscribe();
    expect(seen.map((m) => [m.type, m.rideId])).toEqual([
      ['SNAPSHOT', null],
      ['RIDE_CREATED', a],
    ]);

    const missed = [await create(11), await create(12)];
    const resumed: Message['rides'][] = [];
    const again = client
      .subscribe<Message>({ query: LIVE, variables: { s: 41, d: 42, after: seen[1].seq, afterRide: seen[1].rideId } })
      .subscribe({ next: ({ data }) => data && resumed.push(data.rides) });
    await waitUntil('the missed changes', async () => resumed.length >= 2 || undefined);
    again.unsubscribe();
    expect(resumed.map((m) => m.rideId)).toEqual(missed);
  } finally {
    client.stop();
    await wsClient.dispose();
  }
});
