import type { ApolloServerPlugin } from '@apollo/server';
import { Kind, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import type { Metrics } from '../metrics';
import type { RequestContext } from '../service';
import type { GqlContext } from './context';

/** Root fields that read or change rideshare data: the requests `requestCount` counts. */
const COUNTED_FIELDS = new Set([
  'users', 'user', 'rides', 'ride', 'rideCount', 'areas',
  'createUser', 'deleteUser', 'createRide', 'joinRide', 'deleteRide', 'clearDatabase',
]);

/**
 * The metrics label of an operation: its root field (`createRide`), `multiple` for several
 * distinct ones, `other` for fragments at the root or fields the schema lacks. Labels come
 * from the schema, never from client text, so clients cannot grow the series count.
 */
export function operationLabel(operation: OperationDefinitionNode, schema: GraphQLSchema): string {
  const root = operation.operation === 'mutation' ? schema.getMutationType() : operation.operation === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();
  const fields = root?.getFields() ?? {};
  const names = new Set<string>();
  for (const s of operation.selectionSet.selections) {
    if (s.kind !== Kind.FIELD) return 'other';
    const name = s.name.value;
    if (name === '__typename') continue;
    if (!Object.hasOwn(fields, name) && name !== '__schema' && name !== '__type') return 'other';
    names.add(name);
  }
  return names.size === 1 ? [...names][0] : names.size ? 'multiple' : 'other';
}

export function touchesData(operation: OperationDefinitionNode): boolean {
  return operation.selectionSet.selections.some((s) => s.kind === Kind.FIELD && COUNTED_FIELDS.has(s.name.value));
}

/** `extensions.dbaas`: the log position of a write, the workers that answered, and which path did. */
export function dbaasExtension(trace: RequestContext['trace'], plan: 'compiled' | 'resolvers') {
  const workers = [...trace.workers];
  return { seq: trace.seq ?? null, workerId: workers[0] ?? null, workers, plan };
}

/**
 * Reports what answered each operation: `extensions.dbaas` ({ seq, workerId, workers, plan })
 * and, after a write, the `X-DBaaS-Seq` header a client can send back as
 * `X-DBaaS-Min-Seq` to read its writes through any gateway.
 */
export function dbaasPlugin(metrics: Metrics): ApolloServerPlugin<GqlContext> {
  return {
  async requestDidStart() {
    let operation = 'unknown';
    return {
      async didResolveOperation({ operation: document, contextValue, schema }) {
        if (!document) return;
        if (touchesData(document)) contextValue.counter.count++;
        operation = operationLabel(document, schema);
      },
      async willSendResponse({ contextValue, response }) {
        const errors = response.body.kind === 'single' ? response.body.singleResult.errors : undefined;
        const code = errors?.[0]?.extensions?.code;
        metrics.requests.inc({ api: 'graphql', operation, outcome: typeof code === 'string' ? code : errors?.length ? 'INTERNAL_SERVER_ERROR' : 'ok' });
        const { trace } = contextValue.request;
        if (trace.seq !== undefined) response.http.headers.set('x-dbaas-seq', String(trace.seq));
        if (response.body.kind !== 'single' || (!trace.workers.size && trace.seq === undefined)) return;
        const result = response.body.singleResult;
        result.extensions = { ...result.extensions, dbaas: dbaasExtension(trace, 'resolvers') };
      },
    };
  },
  };
}
