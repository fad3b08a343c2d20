import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { serverAudits } from 'graphql-http';
import { PASSWORD, TestCluster } from './support/cluster';

/**
 * GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/), checked with the
 * audit suite of the `graphql-http` package against the real gateway: every MUST and every
 * SHOULD passes, with the compiled fast path on (the default) and with everything through
 * Apollo. A MAY may fail (the suite calls that a notice). Then what the suite does not
 * cover: malformed JSON, subscriptions over POST, persisted queries, operationName on the
 * compiled path, and the content type each path answers with.
 */

/** The requirement level an audit states, as graphql-http itself derives it: its name's first word. */
const levelOf = (name: string) => name.split(' ')[0];
const REQUIRED = new Set(['MUST', 'SHOULD']);

describe.each([
  ['the compiled path on', {}],
  ['COMPILED_OPERATIONS=off', { COMPILED_OPERATIONS: 'off' }],
])('the GraphQL-over-HTTP audit suite, %s', (_label, env: Record<string, string>) => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start(env);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  const audits = serverAudits({ url: () => `${cluster.url}/graphql` });
  it('has audits of every level', () => {
    expect(new Set(audits.map((a) => levelOf(a.name)))).toEqual(new Set(['MUST', 'SHOULD', 'MAY']));
  });
  for (const audit of audits) {
    it(`${audit.id} ${audit.name}`, async () => {
      const result = await audit.fn();
      if (!REQUIRED.has(levelOf(audit.name))) return; // a MAY: optional, either way
      expect(result.status === 'ok' ? 'ok' : `${result.status}: ${result.reason}`).toBe('ok');
    });
  }
});

describe('GraphQL over HTTP beyond the audit suite', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  const JSON_TYPE = 'application/json; charset=utf-8';
  const GRAPHQL_RESPONSE = 'application/graphql-response+json; charset=utf-8';

  async function post(body: string | Record<string, unknown>, headers: Record<string, string> = {}) {
    const res = await fetch(`${cluster.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      contentType: res.headers.get('content-type'),
      text,
      body: JSON.parse(text) as {
        data?: unknown;
        errors?: Array<{ message: string; extensions?: { code?: string } }>;
        extensions?: { dbaas?: { plan?: string } };
      },
    };
  }

  it('answers in the media type the client accepts, on the compiled path and on Apollo’s', async () => {
    const cases: Array<[string | undefined, string]> = [
      [undefined, JSON_TYPE],
      ['application/json', JSON_TYPE],
      ['*/*', JSON_TYPE],
      ['application/graphql-response+json', GRAPHQL_RESPONSE],
      // What Apollo Client and graphql-request send.
      ['application/graphql-response+json, application/json;q=0.9', GRAPHQL_RESPONSE],
      ['application/graphql-response+json, application/json', GRAPHQL_RESPONSE],
      ['application/json, application/graphql-response+json', JSON_TYPE],
      ['application/*', JSON_TYPE],
    ];
    const queries: Array<[string, string]> = [
      ['{ areas { id } }', 'compiled'],
      ['{ requestCount areas { id } }', 'resolvers'],
    ];
    for (const [accept, expected] of cases) {
      for (const [query, plan] of queries) {
        const res = await post({ query }, accept === undefined ? {} : { accept });
        expect({ accept, plan: res.body.extensions?.dbaas?.plan, status: res.status, contentType: res.contentType }).toEqual({ accept, plan, status: 200, contentType: expected });
      }
    }
    // A compiled mutation, and its error (data: null is still a 200 with the data entry).
    const mutation = 'mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }';
    for (const [accept, expected] of [
      ['application/json', JSON_TYPE],
      ['application/graphql-response+json', GRAPHQL_RESPONSE],
    ]) {
      const created = await post({ query: mutation, variables: { u: `media_${accept.length}`, p: PASSWORD } }, { accept });
      expect([created.status, created.contentType, created.body.extensions?.dbaas?.plan]).toEqual([200, expected, 'compiled']);
      const refused = await post({ query: mutation, variables: { u: 'not valid', p: PASSWORD } }, { accept });
      expect([refused.status, refused.contentType, refused.body.data, refused.body.errors?.[0].extensions?.code]).toEqual([200, expected, null, 'BAD_USER_INPUT']);
    }
    // Neither JSON type acceptable: 406 from either path.
    for (const [query] of queries) expect((await post({ query }, { accept: 'text/html' })).status).toBe(406);
  });

  it('reports request errors with 200 to application/json clients and 400 without data to graphql-response+json ones', async () => {
    const requests: Array<[string, Record<string, unknown>]> = [
      ['GRAPHQL_PARSE_FAILED', { query: '{ areas { id }' }],
      ['GRAPHQL_VALIDATION_FAILED', { query: '{ areas { nope } }' }],
      ['BAD_USER_INPUT', { query: 'query($id: Int!) { ride(id: $id) { id } }', variables: { id: 'one' } }],
    ];
    for (const [code, body] of requests) {
      const json = await post(body, { accept: 'application/json' });
      expect([json.status, json.contentType, json.body.errors?.[0].extensions?.code]).toEqual([200, JSON_TYPE, code]);
      const graphqlResponse = await post(body, { accept: 'application/graphql-response+json' });
      expect([graphqlResponse.status, graphqlResponse.contentType, graphqlResponse.body.errors?.[0].extensions?.code]).toEqual([400, GRAPHQL_RESPONSE, code]);
      expect(graphqlResponse.body).not.toHaveProperty('data');
    }
  });

  it('refuses a non-string operationName, also for an operation the compiled path answers', async () => {
    for (const operationName of [5, { name: 'Q' }, ['Q'], true]) {
      const res = await post({ query: 'query Q { areas { id } }', operationName });
      expect([res.status, res.body.errors?.[0].extensions?.code]).toEqual([400, 'BAD_REQUEST']);
      expect(res.body.errors?.[0].message).toMatch(/operationName/);
    }
    const named = await post({ query: 'query Q { areas { id } } query R { rideCount }', operationName: 'R' });
    expect([named.status, named.body.extensions?.dbaas?.plan, Object.keys(named.body.data as object)]).toEqual([200, 'compiled', ['rideCount']]);
  });

  it('answers a malformed JSON body with a GraphQL error, not an HTML page or a stack trace in the log', async () => {
    const logBefore = fs.statSync(cluster.logFile).size;
    for (const [accept, expected] of [
      [undefined, JSON_TYPE],
      ['application/graphql-response+json', GRAPHQL_RESPONSE],
    ] as const) {
      const res = await post('{ "query": "{ areas { id } }"', accept ? { accept } : {});
      expect([res.status, res.contentType]).toEqual([400, expected]);
      expect(res.body.errors?.[0].extensions?.code).toBe('BAD_REQUEST');
      expect(res.body.errors?.[0].message).toMatch(/JSON/);
      expect(res.text).not.toMatch(/<html|<pre|\n\s+at /i);
    }
    // Other body failures keep their HTTP status and get the same JSON shape.
    const big = await post(JSON.stringify({ query: `{ rideCount } # ${'x'.repeat(2 * 2 ** 20)}` }));
    expect([big.status, big.contentType, big.body.errors?.[0].extensions?.code]).toEqual([413, JSON_TYPE, 'BAD_REQUEST']);
    await new Promise((r) => setTimeout(r, 200)); // the log is written asynchronously
    const log = fs.readFileSync(cluster.logFile, 'utf8').slice(logBefore);
    expect(log).not.toMatch(/SyntaxError|\n\s+at /);
  });

  it('answers a subscription sent over POST with a BAD_REQUEST that names graphql-ws', async () => {
    for (const [accept, status] of [
      ['application/json', 400],
      ['application/graphql-response+json', 400],
    ] as const) {
      const res = await post({ query: 'subscription { clusterEvents { type } }' }, { accept });
      expect(res.status).toBe(status);
      expect(res.body.errors?.[0].extensions?.code).toBe('BAD_REQUEST');
      expect(res.body.errors?.[0].message).toMatch(/graphql-ws.*ws:\/\/.*\/graphql/);
    }
  });

  it('serves automatic persisted queries: an unknown hash is PERSISTED_QUERY_NOT_FOUND, then the query registers', async () => {
    const query = '{ areas { id name } }';
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const persistedQuery = { version: 1, sha256Hash };
    const unknown = await post({ extensions: { persistedQuery } });
    expect([unknown.status, unknown.body.errors?.[0].extensions?.code, unknown.body.errors?.[0].message]).toEqual([200, 'PERSISTED_QUERY_NOT_FOUND', 'PersistedQueryNotFound']);
    const registered = await post({ query, extensions: { persistedQuery } });
    expect(registered.body.errors).toBeUndefined();
    const byHash = await post({ extensions: { persistedQuery } });
    expect(byHash.body).toMatchObject({ data: registered.body.data });
    // A hash that is not the query's: an error about the request, with its status by media type.
    const wrongHash = { query, extensions: { persistedQuery: { version: 1, sha256Hash: '0'.repeat(64) } } };
    for (const [accept, status] of [
      ['application/json', 200],
      ['application/graphql-response+json', 400],
    ] as const) {
      const res = await post(wrongHash, { accept });
      expect([res.status, res.body.errors?.[0].message]).toEqual([status, 'provided sha does not match query']);
    }
  });
});
