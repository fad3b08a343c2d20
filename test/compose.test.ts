import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const COMPOSE_FILE = path.resolve(__dirname, '../compose/docker-compose.yml');
const RABBITMQ_CLUSTER_FILE = path.resolve(__dirname, '../compose/docker-compose.rabbitmq-cluster.yml');

describe('compose/docker-compose.yml', () => {
  it('is a valid compose file with the services a deployment needs', async () => {
    const { stdout } = await run('docker-compose', ['-f', COMPOSE_FILE, 'config'], { env: { ...process.env, DBAAS_ADMIN_TOKEN: 'compose-check' } });
    for (const service of ['rabbitmq:', 'zookeeper:', 'postgres:', 'gateway:', 'worker-image:']) expect(stdout).toContain(`  ${service}`);
    expect(stdout).toContain('/var/run/docker.sock:/var/run/docker.sock');
    expect(stdout).toContain('WORKER_RUNTIME: docker');
  });

  it('adds a three-node RabbitMQ cluster with its override file, which the gateway can be pointed at', async () => {
    const env = {
      ...process.env,
      DBAAS_ADMIN_TOKEN: 'compose-check',
      RABBITMQ_ERLANG_COOKIE: 'compose-cookie',
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672,amqp://guest:guest@127.0.0.1:5673,amqp://guest:guest@127.0.0.1:5674',
    };
    const { stdout } = await run('docker-compose', ['-f', COMPOSE_FILE, '-f', RABBITMQ_CLUSTER_FILE, 'config'], { env });
    for (const service of ['rabbitmq-2:', 'rabbitmq-3:']) expect(stdout).toContain(`  ${service}`);
    for (const port of ['5673', '5674']) expect(stdout).toContain(`RABBITMQ_NODE_PORT: '${port}'`);
    expect(stdout).toContain('rabbitmq-cluster.conf:/etc/rabbitmq/conf.d/20-cluster.conf:ro');
    expect(stdout).toContain(`AMQP_URL: ${env.AMQP_URL}`);
    // The same cookie on every node, or they cannot cluster; refused without one.
    const { RABBITMQ_ERLANG_COOKIE: _cookie, ...withoutCookie } = env;
    await expect(run('docker-compose', ['-f', COMPOSE_FILE, '-f', RABBITMQ_CLUSTER_FILE, 'config'], { env: withoutCookie })).rejects.toMatchObject({
      stderr: expect.stringMatching(/RABBITMQ_ERLANG_COOKIE/),
    });
  });

  it('refuses to run without an admin token', async () => {
    const env = { ...process.env };
    delete env.DBAAS_ADMIN_TOKEN;
    await expect(run('docker-compose', ['-f', COMPOSE_FILE, 'config'], { env })).rejects.toMatchObject({ stderr: expect.stringMatching(/DBAAS_ADMIN_TOKEN/) });
  });
});
