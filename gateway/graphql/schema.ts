import 'reflect-metadata';
import { EventEmitter } from 'node:events';
import { printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type PubSub } from 'type-graphql';
import { clusterEventsPubSub, resolvers } from './resolvers';

const ROOT_DESCRIPTIONS = {
  Query:
    "Reads. The data fields are served by the slaves: a read waits (up to READ_TIMEOUT_MS) for a slave that has applied this gateway's last write, or the seq in an `X-DBaaS-Min-Seq` header if higher (`X-DBaaS-Consistency: eventual` skips the wait), and is UNAVAILABLE when none answers in time. `workers`, `cluster` and `requestCount` are answered by the gateway itself.",
  Mutation:
    'Writes and admin operations. A data write is applied by the master and acknowledged only once it is in the durable log; the answer carries its log position in the `X-DBaaS-Seq` header and `extensions.dbaas.seq`. Errors carry `extensions.code`: BAD_USER_INPUT, NOT_FOUND, CONFLICT, FORBIDDEN (an admin operation without the admin token) or UNAVAILABLE (no master within WRITE_TIMEOUT_MS, or too many writes from one address).',
  Subscription: 'Live streams, over the graphql-ws protocol on `/graphql`.',
};

/** The gateway's GraphQL schema: what gateway/server.ts serves and schema.graphql prints. */
export async function buildGatewaySchema(pubSub: PubSub): Promise<GraphQLSchema> {
  const schema = await buildSchema({ resolvers, validate: false, pubSub });
  // type-graphql takes no description for the root types; graphql-js exposes it as a plain property.
  for (const root of [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]) {
    if (root && root.name in ROOT_DESCRIPTIONS) root.description = ROOT_DESCRIPTIONS[root.name as keyof typeof ROOT_DESCRIPTIONS];
  }
  return schema;
}

export const SCHEMA_FILE_HEADER = `# The GraphQL schema of the ridedb gateway, printed from the code: do not edit.
# Change schema/graphql.ts or gateway/graphql/resolvers.ts, then run \`npm run schema:print\`;
# test/schemaFile.test.ts fails while this file and the code differ.

`;

/** The text of schema.graphql: the header, then the schema as graphql-js prints it. */
export async function gatewaySchemaFile(): Promise<string> {
  // Printing subscribes to nothing: an idle emitter stands in for the orchestrator.
  const schema = await buildGatewaySchema(clusterEventsPubSub(new EventEmitter()));
  return `${SCHEMA_FILE_HEADER}${printSchema(schema)}\n`;
}
