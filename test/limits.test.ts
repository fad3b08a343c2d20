import { PASSWORD, TestCluster } from './support/cluster';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ MUTATIONS_PER_MINUTE_PER_IP: '5', CORS_ORIGINS: 'http://allowed.example' });
});
afterAll(async () => {
  await cluster?.stop();
});

const CREATE_USER = 'mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }';

describe('request limits', () => {
  it('limits writes per client address with UNAVAILABLE, and leaves reads alone', async () => {
    for (let i = 0; i < 5; i++) expect((await cluster.gql(CREATE_USER, { u: `limited_${i}`, p: PASSWORD })).errors).toBeUndefined();
    const sixth = await cluster.gql(CREATE_USER, { u: 'limited_5', p: PASSWORD });
    expect(sixth.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
    expect(sixth.errors?.[0]?.message).toMatch(/rate limit/);
    const rest = await fetch(`${cluster.url}/api/v1/users`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'limited_rest', password: PASSWORD }),
    });
    expect(rest.status).toBe(503);
    expect((await cluster.data<{ users: unknown[] }>('{ users { username } }')).users).toHaveLength(5);
  });

  it('sends CORS headers only to the configured origins', async () => {
    const allowed = await fetch(`${cluster.url}/graphql`, {
      method: 'POST',
      headers: { origin: 'http://allowed.example', 'content-type': 'application/json' },
      body: '{"query":"{ rideCount }"}',
    });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://allowed.example');
    const other = await fetch(`${cluster.url}/graphql`, {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'content-type': 'application/json' },
      body: '{"query":"{ rideCount }"}',
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses request bodies over the size limit', async () => {
    const big = JSON.stringify({ query: `{ rideCount } # ${'x'.repeat(2 * 2 ** 20)}` });
    const res = await fetch(`${cluster.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(res.status).toBe(413);
  });
});
