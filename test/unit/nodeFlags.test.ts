import fs from 'node:fs';
import path from 'node:path';
import { GATEWAY_NODE_FLAGS, NODE_PROCESS_ENV, WORKER_NODE_FLAGS } from '../../gateway/nodeFlags';

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

// The launchers that cannot import gateway/nodeFlags.ts repeat its values as text.
describe('node launch flags', () => {
  it('are the same in npm start, both images and the worker image script', () => {
    const arena = `MALLOC_ARENA_MAX=${NODE_PROCESS_ENV.MALLOC_ARENA_MAX}`;
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start;
    expect(start).toContain(`node ${GATEWAY_NODE_FLAGS.join(' ')} dist/gateway/main.js`);
    expect(start).toContain(arena);
    const gatewayImage = read('compose/gateway.Dockerfile');
    expect(gatewayImage).toContain(`["node", ${GATEWAY_NODE_FLAGS.map((f) => `"${f}"`).join(', ')}, "dist/gateway/main.js"]`);
    expect(gatewayImage).toContain(`ENV ${arena}`);
    for (const file of ['compose/worker.Dockerfile', 'scripts/build-worker-image.sh']) {
      const text = read(file);
      for (const flag of WORKER_NODE_FLAGS) expect(text).toContain(`"${flag}", "`);
      expect(text).toContain(`ENV ${arena}`);
    }
  });
});
