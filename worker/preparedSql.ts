import { createHash } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { Sql } from './sql';

const statementNames = new Map<string, string>();
/**
 * Clients' selections (./selection) make statement texts of their own; past this many
 * distinct texts, new ones run unnamed, so neither this map nor each connection's set of
 * prepared statements grows without bound.
 */
const MAX_PREPARED = 2000;

function nameOf(text: string): string | undefined {
  let name = statementNames.get(text);
  if (!name && statementNames.size < MAX_PREPARED) {
    name = `c_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
    statementNames.set(text, name);
  }
  return name;
}

/**
 * Runs catalogue statements as named prepared statements, so PostgreSQL parses and plans
 * each one once per connection instead of on every request.
 */
export function prepared(client: Pool | PoolClient): Sql {
  return {
    query: (text, values) => client.query({ name: nameOf(text), text, values }),
  };
}
