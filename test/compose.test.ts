import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const COMPOSE_FILE = path.resolve(__dirname, '../compose/docker-compose.yml');

describe('compose/docker-compose.yml', () => {
  it('is a valid compose file with the services a deployment needs', async () => {
    const { stdout } = await run('docker-compose', ['-f', COMPOSE_FILE, 'config'], { env: { ...process.env, DBAAS_ADMIN_TOKEN: 'compose-check' } });
    for (const service of ['rabbitmq:', 'zookeeper:', 'postgres:', 'gateway:', 'worker-image:']) expect(stdout).toContain(`  ${service}`);
    expect(stdout).toContain('/var/run/docker.sock:/var/run/docker.sock');
    expect(stdout).toContain('WORKER_RUNTIME: docker');
  });

  it('refuses to run without an admin token', async () => {
    const env = { ...process.env };
    delete env.DBAAS_ADMIN_TOKEN;
    await expect(run('docker-compose', ['-f', COMPOSE_FILE, 'config'], { env })).rejects.toMatchObject({ stderr: expect.stringMatching(/DBAAS_ADMIN_TOKEN/) });
  });
});
