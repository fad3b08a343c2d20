import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { gatewaySchemaFile } from './graphql/schema';

/**
 * `npm run schema:print`: rewrites schema.graphql at the repository root from the code,
 * the file client codegen points at (this script runs from dist/gateway/).
 */
const target = path.resolve(__dirname, '../../schema.graphql');

gatewaySchemaFile().then(
  (sdl) => {
    writeFileSync(target, sdl);
    process.stdout.write(`wrote ${target}\n`);
  },
  (err: unknown) => {
    process.stderr.write(`could not print the schema: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
