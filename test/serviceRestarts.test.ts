import { execFileSync } from 'node:child_process';
import { PASSWORD, TestCluster, waitUntil } from './support/cluster';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await cluster?.stop();
});

const rabbitmqctl = (...args: string[]) => execFileSync('rabbitmqctl', ['-q', ...args], { stdio: 'ignore', timeout: 120_000 });
const CREATE_USER = 'mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }';

const recovered = () =>
  waitUntil(
    'writes and reads again',
    async () => {
      const res = await cluster.gql(CREATE_USER, { u: `after_${Date.now()}`, p: PASSWORD });
      return !res.errors;
    },
    90_000,
  );

describe('a PostgreSQL restart', () => {
  it('needs no manual step: the cluster serves writes and reads again, with everything acknowledged before', async () => {
    await cluster.data(CREATE_USER, { u: 'before_pg_restart', p: PASSWORD });
    const version = execFileSync('ls', ['/etc/postgresql'], { encoding: 'utf8' }).trim().split('\n')[0];
    execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart'], { stdio: 'ignore', timeout: 120_000 });
    await recovered();
    await cluster.waitHealthy(60_000);
    const { users } = await cluster.data<{ users: Array<{ username: string }> }>('{ users { username } }');
    expect(users.map((u) => u.username)).toContain('before_pg_restart');
  });
});

describe('a RabbitMQ restart', () => {
  it('fails requests with UNAVAILABLE while the broker is down and recovers without a manual step, losing nothing', async () => {
    await cluster.data(CREATE_USER, { u: 'before_restart', p: PASSWORD });
    rabbitmqctl('stop_app');
    try {
      const during = await cluster.gql('{ users { username } }');
      expect(during.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
      expect(JSON.stringify(during)).not.toMatch(/at .*\.js:\d+/);
    } finally {
      rabbitmqctl('start_app');
    }
    await recovered();
    await cluster.waitHealthy(60_000);
    const { users } = await cluster.data<{ users: Array<{ username: string }> }>('{ users { username } }');
    expect(users.map((u) => u.username)).toContain('before_restart');
  });
});
