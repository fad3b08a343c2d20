import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSchema } from 'graphql';
import { chromium, type Browser } from 'playwright-core';
import { TestCluster } from './support/cluster';

// `RIDEDB_SCREENSHOT=docs/playground.png npx jest test/playground.test.ts` refreshes the docs picture.
const SCREENSHOT = process.env.RIDEDB_SCREENSHOT ?? path.join(os.tmpdir(), 'ridedb-playground.png');

/** The committed SDL (test/schemaFile.test.ts keeps it equal to the code): what the docs pane must show. */
const SDL = buildSchema(fs.readFileSync(path.join(__dirname, '..', 'schema.graphql'), 'utf8'));
/** A description as the docs pane renders it (markdown: no backticks, collapsed whitespace). */
const rendered = (text: string | null | undefined) => (text ?? '').replace(/`/g, '').replace(/\s+/g, ' ').trim();

let cluster: TestCluster;
let browser: Browser;
beforeAll(async () => {
  cluster = await TestCluster.start();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
});

describe('the GraphQL explorer', () => {
  it('loads from the gateway alone, runs the example query, shows the result and the schema docs', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const problems: string[] = [];
    page.on('requestfailed', (req) => problems.push(`failed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
    page.on('response', (res) => {
      if (res.status() >= 400) problems.push(`${res.status()}: ${res.url()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('request', (req) => {
      if (!req.url().startsWith(cluster.url) && !req.url().startsWith(cluster.url.replace('http', 'ws'))) problems.push(`off-gateway request: ${req.url()}`);
    });

    await page.goto(`${cluster.url}/graphql`, { waitUntil: 'networkidle' });
    await page.waitForSelector('.graphiql-execute-button', { timeout: 30_000 });
    expect(await page.title()).toBe('ridedb · GraphQL');
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(() => /"epoch"/.test(document.querySelector('.result-window')?.textContent ?? ''), undefined, { timeout: 30_000 });
    const result = (await page.textContent('.result-window')) ?? '';
    expect(result).toMatch(/"role": "MASTER"/);
    expect(result).toMatch(/"role": "SLAVE"/);

    // The docs pane (GraphiQL's sidebar button) lists the root types from introspection ...
    await page.click('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]');
    await page.waitForSelector('.graphiql-doc-explorer-root-type', { timeout: 30_000 });
    expect(await page.locator('.graphiql-doc-explorer-error').count()).toBe(0);
    const roots = await page.locator('.graphiql-doc-explorer-section-content').first().innerText();
    expect(roots.replace(/\s+/g, ' ')).toContain('query: Query mutation: Mutation subscription: Subscription');
    // ... and, on Query, the descriptions of schema.graphql.
    await page
      .locator('.graphiql-doc-explorer-type-name', { hasText: /^Query$/ })
      .first()
      .click();
    await page.waitForFunction(() => document.querySelector('.graphiql-doc-explorer-title')?.textContent === 'Query', undefined, { timeout: 10_000 });
    const docs = rendered(await page.textContent('.graphiql-doc-explorer-content'));
    const query = SDL.getQueryType()!;
    expect(rendered(query.description)).not.toBe('');
    expect(docs).toContain(rendered(query.description));
    expect(docs).toContain(rendered(query.getFields().rides.description));

    await page.screenshot({ path: SCREENSHOT });
    expect(problems).toEqual([]);
  });

  it('also answers at / and leaves GraphQL over GET to the API', async () => {
    const root = await fetch(`${cluster.url}/`, { headers: { accept: 'text/html' } });
    expect(await root.text()).toContain('/playground/graphiql.js');
    const get = await fetch(`${cluster.url}/graphql?query=${encodeURIComponent('{ rideCount }')}`, { headers: { accept: 'application/json', 'apollo-require-preflight': 'true' } });
    expect(await get.json()).toMatchObject({ data: { rideCount: 0 } });
  });
});
