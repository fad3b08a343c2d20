import type { ApolloServerPlugin } from '@apollo/server';
import { dbaasExtension, graphqlOutcome, SEQ_HEADER, seqHeaderValue, type RequestAccounting } from '../requestAccounting';
import type { GqlContext } from './context';

/**
 * Apollo's side of request accounting (gateway/requestAccounting.ts): counts and labels
 * each operation, records its outcome, and reports what answered it — `extensions.dbaas`
 * and, after a write, the `X-DBaaS-Seq` header.
 */
export function dbaasPlugin(accounting: RequestAccounting): ApolloServerPlugin<GqlContext> {
  return {
    async requestDidStart() {
      let operation = 'unknown';
      return {
        async didResolveOperation({ operation: document, schema }) {
          if (document) operation = accounting.graphqlOperation(document, schema);
        },
        async willSendResponse({ contextValue, response }) {
          const errors = response.body.kind === 'single' ? response.body.singleResult.errors : undefined;
          accounting.finished('graphql', operation, graphqlOutcome(errors));
          const { trace } = contextValue.request;
          const seq = seqHeaderValue(trace);
          if (seq !== undefined) response.http.headers.set(SEQ_HEADER.toLowerCase(), seq);
          if (response.body.kind !== 'single' || (!trace.workers.size && trace.seq === undefined)) return;
          const result = response.body.singleResult;
          result.extensions = { ...result.extensions, dbaas: dbaasExtension(trace, 'resolvers') };
        },
      };
    },
  };
}
