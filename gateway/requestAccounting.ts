import { Kind, OperationTypeNode, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import { queryFieldArgs, writeCatalogue } from '../schema';
import type { Metrics } from './metrics';
import type { RequestContext } from './service';

/**
 * What every API request leaves behind, in one place for GraphQL's two paths and REST:
 * `requestCount` (the original RideShare `_count`), the `ridedb_requests_total` metric,
 * and what tells a client where its request landed (`X-DBaaS-Seq`, `extensions.dbaas`).
 */

/** API requests since the last reset that touched rideshare data. */
export interface RequestCounter {
  count: number;
}

/** Root fields that read or change rideshare data: the catalogue's reads and writes. */
const COUNTED_FIELDS = new Set<string>([...Object.keys(queryFieldArgs), ...Object.keys(writeCatalogue)]);

export function touchesData(operation: OperationDefinitionNode): boolean {
  return operation.selectionSet.selections.some((s) => s.kind === Kind.FIELD && COUNTED_FIELDS.has(s.name.value));
}

/**
 * The metrics label of an operation: its root field (`createRide`), `multiple` for several
 * distinct ones, `other` for fragments at the root or fields the schema lacks. Labels come
 * from the schema, never from client text, so clients cannot grow the series count.
 */
export function operationLabel(operation: OperationDefinitionNode, schema: GraphQLSchema): string {
  const root =
    operation.operation === OperationTypeNode.MUTATION
      ? schema.getMutationType()
      : operation.operation === OperationTypeNode.SUBSCRIPTION
        ? schema.getSubscriptionType()
        : schema.getQueryType();
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

/** The log position of the request's writes: send it back as `X-DBaaS-Min-Seq` to read them anywhere. */
export const SEQ_HEADER = 'X-DBaaS-Seq';

export function seqHeaderValue(trace: RequestContext['trace']): string | undefined {
  return trace.seq === undefined ? undefined : String(trace.seq);
}

/**
 * `extensions.dbaas`: the log position of a write, the workers that answered, which path
 * did, and whether the answer came from the gateway's read cache (then no worker answered).
 */
export function dbaasExtension(trace: RequestContext['trace'], plan: 'compiled' | 'resolvers') {
  const workers = [...trace.workers];
  return { seq: trace.seq ?? null, workerId: workers[0] ?? null, workers, plan, cached: trace.cached ?? false };
}

/** The metric outcome of a GraphQL answer: its first error's code, or `ok`. */
export function graphqlOutcome(errors: ReadonlyArray<{ extensions?: Record<string, unknown> }> | undefined): string {
  const code = errors?.[0]?.extensions?.code;
  return typeof code === 'string' ? code : errors?.length ? 'INTERNAL_SERVER_ERROR' : 'ok';
}

export class RequestAccounting {
  constructor(
    readonly counter: RequestCounter,
    private readonly metrics: Metrics,
  ) {}

  /** A GraphQL operation about to run: counted if it touches data. Returns its metric label. */
  graphqlOperation(operation: OperationDefinitionNode, schema: GraphQLSchema): string {
    if (touchesData(operation)) this.counter.count++;
    return operationLabel(operation, schema);
  }

  /** A REST call about to run; every data route counts. */
  restCall(counted: boolean): void {
    if (counted) this.counter.count++;
  }

  finished(api: 'graphql' | 'rest', operation: string, outcome: string): void {
    this.metrics.requests.inc({ api, operation, outcome });
  }
}
