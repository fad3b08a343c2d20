import { createHash } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { Sql } from '../schema';

const statementNames = new Map<string, string>();

function nameOf(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `c_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
    statementNames.set(text, name);
  }
  return name;
}

/**
 * Runs catalogue statements as named prepared statements, so PostgreSQL parses and plans
 * each one once per connection instead of on every request. The catalogue is a fixed set
 * of texts, so the set of names stays small.
 */
export function prepared(client: Pool | PoolClient): Sql {
  return {
    query: (text, values) => client.query({ name: nameOf(text), text, values }),
  };
}
