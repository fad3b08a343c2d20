import type { ApolloServerPlugin } from '@apollo/server';
import { Kind, type OperationDefinitionNode } from 'graphql';
import type { GqlContext } from './context';

/** Root fields that read or change rideshare data: the requests `requestCount` counts. */
const COUNTED_FIELDS = new Set([
  'users', 'user', 'rides', 'ride', 'rideCount', 'areas',
  'createUser', 'deleteUser', 'createRide', 'joinRide', 'deleteRide', 'clearDatabase',
]);

function touchesData(operation: OperationDefinitionNode): boolean {
  return operation.selectionSet.selections.some((s) => s.kind === Kind.FIELD && COUNTED_FIELDS.has(s.name.value));
}

/**
 * Reports what answered each operation: `extensions.dbaas` ({ seq, workerId, workers })
 * and, after a write, the `X-DBaaS-Seq` header a client can send back as
 * `X-DBaaS-Min-Seq` to read its writes through any gateway.
 */
export const dbaasPlugin: ApolloServerPlugin<GqlContext> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ operation, contextValue }) {
        if (operation && touchesData(operation)) contextValue.counter.count++;
      },
      async willSendResponse({ contextValue, response }) {
        const { trace } = contextValue.request;
        const workers = [...trace.workers];
        if (trace.seq !== undefined) response.http.headers.set('x-dbaas-seq', String(trace.seq));
        if (response.body.kind !== 'single' || (!workers.length && trace.seq === undefined)) return;
        const result = response.body.singleResult;
        result.extensions = { ...result.extensions, dbaas: { seq: trace.seq ?? null, workerId: workers[0] ?? null, workers } };
      },
    };
  },
};
