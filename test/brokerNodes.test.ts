import { TestCluster } from './support/cluster';

// AMQP_URL with several nodes: every process (gateway, live log reader, workers) connects
// to one that accepts it. Here the other "nodes" are closed ports: one machine has one
// RabbitMQ; `npm run test:multinode` is where a real cluster loses a node.
let cluster: TestCluster;
afterAll(async () => {
  await cluster?.stop();
});

describe('several RabbitMQ nodes in AMQP_URL', () => {
  it('connect gateway and workers to a live node, whichever order they are tried in', async () => {
    const live = 'amqp://guest:guest@127.0.0.1:5672';
    // Ports nothing listens on: a free port found now could be taken by a test file running beside this one.
    const dead = (port: number) => `amqp://guest:guest@127.0.0.1:${port}`;
    cluster = await TestCluster.start({ AMQP_URL: [dead(1), live, dead(9)].join(','), MUTATIONS_PER_MINUTE_PER_IP: '0' });
    await cluster.data('mutation { createUser(username: "driver", password: "3da541559918a808c2402bba5012f6c60b27661c") { username } }');
    const made = await cluster.data<{ createRide: { id: number } }>(
      'mutation { createRide(createdBy: "driver", timestamp: "2036-01-01T00:00:00Z", source: 3, destination: 4) { id } }',
    );
    const { ride } = await cluster.data<{ ride: { id: number } | null }>(`{ ride(id: ${made.createRide.id}) { id } }`);
    expect(ride?.id).toBe(made.createRide.id);
    const workers = await cluster.workers();
    expect(workers.map((w) => w.role).sort()).toEqual(['MASTER', 'SLAVE']);
  });
});
