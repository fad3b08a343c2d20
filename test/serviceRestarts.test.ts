import { PASSWORD, queryOne, TestCluster, waitUntil } from './support/cluster';
import { PrivatePostgres } from './support/privatePostgres';
import { PrivateRabbitmq } from './support/privateRabbitmq';
import { settleAll } from './support/privateZookeeper';

// The machine's PostgreSQL and RabbitMQ serve every other cluster on it: this file runs
// its cluster on instances of its own and restarts only those.
let pg: PrivatePostgres | undefined;
let rabbitmq: PrivateRabbitmq | undefined;
let cluster: TestCluster | undefined;
beforeAll(async () => {
  pg = await PrivatePostgres.prepare();
  rabbitmq = await PrivateRabbitmq.prepare();
  await settleAll([pg.start(), rabbitmq.start()]);
  cluster = await TestCluster.start({ DATABASE_URL: pg.url, AMQP_URL: rabbitmq.url });
});
afterAll(async () => {
  try {
    if (cluster) {
      // A failed test may have left one down; removing the namespace needs both.
      if (pg && !(await pg.answers())) await pg.start();
      if (rabbitmq && !(await rabbitmq.answers())) await rabbitmq.startApp();
      await cluster.stop();
    }
  } finally {
    await settleAll([pg?.remove(), rabbitmq?.remove()]);
  }
});

const CREATE_USER = 'mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }';

const recovered = () =>
  waitUntil(
    'writes and reads again',
    async () => {
      const res = await cluster!.gql(CREATE_USER, { u: `after_${Date.now()}`, p: PASSWORD });
      return !res.errors;
    },
    90_000,
  );

describe('a PostgreSQL restart', () => {
  it('needs no manual step: the cluster serves writes and reads again, with everything acknowledged before', async () => {
    await cluster!.data(CREATE_USER, { u: 'before_pg_restart', p: PASSWORD });
    // The workers' databases are on the server restarted below, not on the machine's.
    const { databases } = await queryOne<{ databases: string[] }>(pg!.url, 'SELECT array_agg(datname::text) AS databases FROM pg_database');
    for (const w of await cluster!.workers()) expect(databases).toContain(cluster!.names.workerDatabase(w.id));
    await pg!.restart();
    await recovered();
    await cluster!.waitHealthy(60_000);
    const { users } = await cluster!.data<{ users: Array<{ username: string }> }>('{ users { username } }');
    expect(users.map((u) => u.username)).toContain('before_pg_restart');
  });
});

describe('a RabbitMQ restart', () => {
  it('fails requests with UNAVAILABLE while the broker is down and recovers without a manual step, losing nothing', async () => {
    await cluster!.data(CREATE_USER, { u: 'before_restart', p: PASSWORD });
    await rabbitmq!.stopApp();
    try {
      const during = await cluster!.gql('{ users { username } }');
      expect(during.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
      expect(JSON.stringify(during)).not.toMatch(/at .*\.js:\d+/);
    } finally {
      await rabbitmq!.startApp();
    }
    await recovered();
    await cluster!.waitHealthy(60_000);
    const { users } = await cluster!.data<{ users: Array<{ username: string }> }>('{ users { username } }');
    expect(users.map((u) => u.username)).toContain('before_restart');
  });
});
