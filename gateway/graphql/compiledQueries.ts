import type { NextFunction, Request, Response } from 'express';
import {
  getOperationAST,
  getVariableValues,
  GraphQLError,
  Kind,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import { LRUCache } from 'lru-cache';
import type { Metrics } from '../metrics';
import type { RequestContext, RideService } from '../service';
import type { RequestCounter } from './context';
import { rootFields, touchesData } from './plugins';
import { planSelection } from './selectionPlanner';

export interface CompiledQueriesParts {
  schema: GraphQLSchema;
  /** Beyond graphql-js' specified rules (the depth and alias limits). */
  validationRules: ValidationRule[];
  service: RideService;
  metrics: Metrics;
  counter: RequestCounter;
  formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError;
  contextOf(req: Request): RequestContext;
}

interface ParsedDocument {
  document: DocumentNode;
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
}

/** Parse or validation failed: Apollo reports it. */
const DECLINED = 'declined';

/**
 * The read fast path in front of Apollo: a query that only selects rideshare data is
 * answered by one read RPC whose reply — the `data` object as JSON text built by
 * PostgreSQL — goes to the client as is. No per-field resolvers, no re-encoding.
 *
 * Everything else (mutations, cluster fields, subscriptions, invalid documents, GET
 * requests, persisted queries) continues to Apollo, which also produces every error for
 * a request this path declines. `extensions.dbaas.plan` says which path answered.
 */
export function compiledQueries(parts: CompiledQueriesParts) {
  const { schema, service, metrics, counter } = parts;
  const queryType = schema.getQueryType();
  if (!queryType) throw new Error('the schema has no Query type');
  const rules = [...specifiedRules, ...parts.validationRules];
  // By query text, like Apollo's document store, and bounded the same way.
  const documents = new LRUCache<string, ParsedDocument | typeof DECLINED>({ maxSize: 4 * 2 ** 20, sizeCalculation: (_v, query) => query.length || 1 });

  const prepare = (query: string): ParsedDocument | typeof DECLINED => {
    let document: DocumentNode;
    try {
      document = parse(query);
    } catch (err) {
      if (err instanceof GraphQLError) return DECLINED; // a syntax error, reported by Apollo
      throw err;
    }
    if (validate(schema, document, rules).length) return DECLINED;
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    return { document, fragments };
  };

  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const body = req.body as { query?: unknown; operationName?: unknown; variables?: unknown; extensions?: unknown } | undefined;
    if (req.method !== 'POST' || !body || typeof body.query !== 'string' || body.extensions !== undefined) return next();
    const variables = body.variables ?? {};
    if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) return next();
    let parsed = documents.get(body.query);
    if (parsed === undefined) {
      parsed = prepare(body.query);
      documents.set(body.query, parsed);
    }
    if (parsed === DECLINED) return next();
    const operation = getOperationAST(parsed.document, typeof body.operationName === 'string' ? body.operationName : undefined);
    if (!operation) return next();
    const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables as Record<string, unknown>);
    if (coerced.errors) return next();
    const fields = planSelection(operation, queryType, parsed.fragments, coerced.coerced);
    if (!fields) return next();

    const context = parts.contextOf(req);
    if (touchesData(operation)) counter.count++;
    const label = rootFields(operation);
    let payload: string;
    let outcome = 'ok';
    try {
      const data = await service.selection(context, fields);
      payload = `{"data":${data},"extensions":${JSON.stringify({ dbaas: dbaasExtension(context) })}}`;
    } catch (err) {
      const error = parts.formatError({ message: (err as Error).message ?? 'internal error', path: [fields[0].key] }, err);
      outcome = typeof error.extensions?.code === 'string' ? error.extensions.code : 'INTERNAL_SERVER_ERROR';
      payload = JSON.stringify({ errors: [error], data: null, extensions: { dbaas: dbaasExtension(context) } });
    }
    metrics.requests.inc({ api: 'graphql', operation: label, outcome });
    res.status(200).type('application/json').send(payload);
  };
}

function dbaasExtension(context: RequestContext) {
  const workers = [...context.trace.workers];
  return { seq: null, workerId: workers[0] ?? null, workers, plan: 'compiled' };
}
