import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kind, OperationTypeNode, parse } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { TestCluster, waitUntil } from './support/cluster';

/**
 * Runs README.md's examples in order against a fresh cluster, as a reader would, following
 * the convention the README states under "Using it": each ```graphql block is one named
 * operation (```graphql admin: sent with the admin token), a ```json variables block right
 * after it holds its variables, and each `curl` line of a ```sh block runs with the status
 * of its `# NNN` comment expected.
 */
const README_PATH = path.resolve(__dirname, '../README.md');
const run = promisify(execFile);

interface GraphqlExample {
  kind: 'graphql';
  line: number;
  document: string;
  name: string | undefined;
  operation: OperationTypeNode | undefined;
  operations: number;
  admin: boolean;
  variables: Record<string, unknown>;
}
interface CurlExample {
  kind: 'curl';
  line: number;
  command: string;
  expectedStatus: number | null;
}
type Example = GraphqlExample | CurlExample;

function readmeExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  const fence = /^```([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm;
  let previous: Example | undefined;
  for (let m = fence.exec(markdown); m; m = fence.exec(markdown)) {
    const line = markdown.slice(0, m.index).split('\n').length;
    const [lang, ...attributes] = m[1].trim().split(/\s+/);
    const body = m[2];
    if (lang === 'graphql') {
      const definitions = parse(body).definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
      previous = {
        kind: 'graphql',
        line,
        document: body,
        name: definitions[0]?.name?.value,
        operation: definitions[0]?.operation,
        operations: definitions.length,
        admin: attributes.includes('admin'),
        variables: {},
      };
      examples.push(previous);
    } else if (lang === 'json' && attributes.includes('variables')) {
      if (previous?.kind !== 'graphql') throw new Error(`README.md:${line}: a json variables block must follow a graphql block`);
      previous.variables = JSON.parse(body) as Record<string, unknown>;
      previous = undefined;
    } else {
      previous = undefined;
      if (lang !== 'sh') continue;
      // Logical lines (joined at trailing backslashes), each with the README line it starts on.
      const raw = body.split('\n');
      for (let i = 0; i < raw.length; i++) {
        const start = i;
        let text = raw[i];
        while (text.endsWith('\\') && i + 1 < raw.length) text = `${text.slice(0, -1)} ${raw[++i]}`;
        if (!/^curl\s/.test(text.trim())) continue;
        const comment = /\s#\s*(.*)$/.exec(text);
        const status = comment ? /^(\d{3})\b/.exec(comment[1]) : null;
        examples.push({ kind: 'curl', line: line + 1 + start, command: comment ? text.slice(0, comment.index) : text, expectedStatus: status ? Number(status[1]) : null });
      }
    }
  }
  return examples;
}

const examples = readmeExamples(fs.readFileSync(README_PATH, 'utf8'));
const label = (e: Example) => (e.kind === 'graphql' ? `${e.operation ?? 'graphql'} ${e.name ?? '(anonymous)'}` : e.command.trim().replace(/\s+/g, ' ').slice(0, 80));

let cluster: TestCluster;
let ws: Client | undefined;
const subscriptions: Array<{ name: string; events: unknown[]; errors: unknown[] }> = [];
beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await ws?.dispose();
  await cluster?.stop();
});

describe('README.md', () => {
  it('has GraphQL examples, each one named operation per block, so each pastes into the explorer as it is', () => {
    const graphql = examples.filter((e): e is GraphqlExample => e.kind === 'graphql');
    expect(graphql.length).toBeGreaterThan(5);
    for (const e of graphql) {
      expect({ line: e.line, operations: e.operations }).toEqual({ line: e.line, operations: 1 });
      expect({ line: e.line, name: e.name }).toEqual({ line: e.line, name: expect.stringMatching(/^[A-Z]\w*$/) });
    }
    expect(examples.filter((e) => e.kind === 'curl').length).toBeGreaterThan(3);
  });

  describe('examples, verbatim and in order, on a fresh cluster', () => {
    for (const example of examples) {
      it(`README.md:${example.line} ${label(example)}`, async () => {
        if (example.kind === 'curl') await runCurl(example);
        else if (example.operation === OperationTypeNode.SUBSCRIPTION) subscribe(example);
        else await runOperation(example);
      });
    }

    it('every subscription above received events and no error', async () => {
      await waitUntil('an event on every subscription', async () => subscriptions.every((s) => s.events.length > 0 || s.errors.length > 0), 30_000);
      for (const s of subscriptions) expect({ name: s.name, errors: s.errors, received: s.events.length > 0 }).toEqual({ name: s.name, errors: [], received: true });
    });
  });
});

async function runOperation(e: GraphqlExample): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (e.admin) headers.authorization = `Bearer ${cluster.config.adminToken}`;
  const res = await fetch(`${cluster.url}/graphql`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query: e.document, variables: e.variables, operationName: e.name }),
  });
  const body = (await res.json()) as { data?: unknown; errors?: unknown[] };
  expect({ status: res.status, errors: body.errors ?? [] }).toEqual({ status: 200, errors: [] });
  expect(body.data).toBeTruthy();
}

function subscribe(e: GraphqlExample): void {
  ws ??= createClient({ url: `${cluster.url.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
  const record = { name: e.name ?? '(anonymous)', events: [] as unknown[], errors: [] as unknown[] };
  subscriptions.push(record);
  ws.subscribe(
    { query: e.document, variables: e.variables, operationName: e.name },
    {
      next: (result) => (result.errors ? record.errors.push(...result.errors) : record.events.push(result.data)),
      error: (err) => record.errors.push(err),
      complete: () => undefined,
    },
  );
}

async function runCurl(e: CurlExample): Promise<void> {
  const command = e.command
    .trim()
    .replace(/localhost:4000/g, `127.0.0.1:${cluster.config.port}`)
    .replace(/^curl\s/, `curl -sS -o /dev/null -w '%{http_code}' `);
  const { stdout } = await run('bash', ['-c', command], { env: { ...process.env, DBAAS_ADMIN_TOKEN: cluster.config.adminToken } });
  const status = Number(stdout.trim());
  if (e.expectedStatus !== null) expect(status).toBe(e.expectedStatus);
  else expect(status >= 200 && status < 300 ? 'a 2xx status' : status).toBe('a 2xx status');
}
