import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  getLocation,
  getNamedType,
  getNullableType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  isLeafType,
  isListType,
  Kind,
  specifiedRules,
  validate,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLFormattedError,
  type GraphQLList,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationRule,
} from 'graphql';
import { LRUCache } from 'lru-cache';
import { writeCatalogue, type FieldSelection } from '../../schema';
import type { RequestContext, RideService } from '../service';
import type { GqlContext } from './context';
import { documentCache, parseDocument, type ParseLimits } from './parseLimits';
import { APPLICATION_JSON, GRAPHQL_RESPONSE_JSON, responseMediaType } from './httpProtocol';
import { dbaasExtension, type RequestAccounting } from '../requestAccounting';
import { planMutation, planSelection, type PlannedMutation } from './selectionPlanner';
import { answerKey } from '../readCache/readCache';

export interface CompiledOperationsParts {
  schema: GraphQLSchema;
  /** Beyond graphql-js' specified rules (the depth and alias limits). */
  validationRules: ValidationRule[];
  parseLimits: ParseLimits;
  service: RideService;
  accounting: RequestAccounting;
  formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError;
  /** What resolvers get for a request's context. */
  resolverContext(request: RequestContext): GqlContext;
}

interface ParsedDocument {
  document: DocumentNode;
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
}

/** A POST /graphql request with its JSON body parsed. */
export type GraphqlPost = IncomingMessage & { body?: unknown };

/**
 * Answers a request or calls `decline` (without having written anything) for Apollo to
 * answer it; `context` comes from the request's headers.
 */
export type CompiledHandler = (req: GraphqlPost, res: ServerResponse, context: RequestContext, decline: () => void) => Promise<void>;

/** Parse or validation failed: Apollo reports it. */
const DECLINED = 'declined';

/** A query planned for one document, operation and set of variables: what a repeat of it needs. */
interface PlannedQuery {
  operation: OperationDefinitionNode;
  fields: FieldSelection[];
  /** The selection as the read cache keys it. */
  key: string;
  /** Its estimated heap size (key text plus the plan, ~4x the selection's JSON). */
  size: number;
}

/**
 * Planned queries by request (text, operation name, variables): the questions clients
 * repeat all day skip variable coercion and planning, which with the read cache were
 * most of a hit's work. Bounded by heap estimate like the documents (key text plus the
 * plan, ~4× its JSON).
 */
const PLAN_CACHE = { maxSize: 8 * 2 ** 20, maxEntrySize: 64 * 1024 } as const;

/**
 * The fast path in front of Apollo for the operations clients send all day:
 * - a query that only selects rideshare data is answered by one read RPC whose reply —
 *   the `data` object as JSON text built by PostgreSQL — goes to the client as is;
 * - a mutation of one data field is one write RPC, its record cut to the selection.
 * No per-field resolvers, no re-encoding of read results.
 *
 * Everything else (cluster fields, several mutations in one request, subscriptions,
 * invalid documents, GET requests, persisted queries, a malformed request, an Accept
 * header that takes neither JSON media type) continues to Apollo, which also reports
 * every error found before an RPC. `extensions.dbaas.plan` says which path
 * answered.
 */
export function compiledOperations(parts: CompiledOperationsParts): CompiledHandler {
  const { schema, service, accounting } = parts;
  const queryType = schema.getQueryType();
  const mutationType = schema.getMutationType();
  if (!queryType || !mutationType) throw new Error('the schema has no Query or Mutation type');
  const mutationFields = mutationType.getFields();
  const rules = [...specifiedRules, ...parts.validationRules];
  const documents = documentCache<ParsedDocument | typeof DECLINED>();

  const plans = new LRUCache<string, PlannedQuery>({
    maxSize: PLAN_CACHE.maxSize,
    maxEntrySize: PLAN_CACHE.maxEntrySize,
    sizeCalculation: (plan) => plan.size,
  });

  const prepare = (query: string): ParsedDocument | typeof DECLINED => {
    const document = parseDocument(query, parts.parseLimits);
    if (document instanceof GraphQLError) return DECLINED; // reported by Apollo, which parses within the same limits
    if (validate(schema, document, rules).length) return DECLINED;
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    return { document, fragments };
  };

  return async (req, res, context, decline) => {
    const body = req.body as { query?: unknown; operationName?: unknown; variables?: unknown; extensions?: unknown } | undefined;
    if (!body || typeof body.query !== 'string' || body.extensions !== undefined) return decline(); // POST only (compiledHttp)
    // Apollo refuses a non-string operationName (400) and answers a client that accepts
    // neither JSON media type (406).
    if (body.operationName != null && typeof body.operationName !== 'string') return decline();
    const mediaType = responseMediaType(req.headers.accept);
    if (mediaType !== APPLICATION_JSON && mediaType !== GRAPHQL_RESPONSE_JSON) return decline();
    const variables = body.variables ?? {};
    if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) return decline();
    let variablesText: string;
    try {
      variablesText = JSON.stringify(variables);
    } catch (err) {
      // Nested past the stack (JSON.parse takes deeper than JSON.stringify gives back):
      // Apollo's path answers it as it does any other request, not as a 500 here.
      if (err instanceof RangeError) return decline();
      throw err;
    }
    const planKey = `${typeof body.operationName === 'string' ? body.operationName : ''}\u0000${variablesText}\u0000${body.query}`;
    const planned = plans.get(planKey);
    if (planned) return answer(res, context, mediaType, planned.operation, { fields: planned.fields, key: planned.key }, null);
    let parsed = documents.get(body.query);
    if (parsed === undefined) {
      parsed = prepare(body.query);
      documents.set(body.query, parsed); // not kept if above maxEntrySize
    }
    if (parsed === DECLINED) return decline();
    const operation = getOperationAST(parsed.document, typeof body.operationName === 'string' ? body.operationName : undefined);
    if (!operation) return decline();
    const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables as Record<string, unknown>);
    if (coerced.errors) return decline();
    const fields = planSelection(operation, queryType, parsed.fragments, coerced.coerced, service.pages);
    const mutation = fields ? null : planMutation(operation, mutationType, parsed.fragments, coerced.coerced, COMPILED_MUTATIONS);
    if (!fields && !mutation) return decline();
    let query: { fields: FieldSelection[]; key: string } | null = null;
    if (fields) {
      const json = JSON.stringify(fields);
      query = { fields, key: answerKey(json) };
      plans.set(planKey, { operation, ...query, size: planKey.length + 4 * json.length + 64 });
    }
    return answer(res, context, mediaType, operation, query, mutation);
  };

  /** Runs a planned query (one read) or mutation (one write) and sends the answer. */
  async function answer(
    res: ServerResponse,
    context: RequestContext,
    mediaType: string,
    operation: OperationDefinitionNode,
    query: { fields: FieldSelection[]; key: string } | null,
    mutation: PlannedMutation | null,
  ): Promise<void> {
    const label = accounting.graphqlOperation(operation, schema);
    // The root field an error is reported at (a compiled query fails as one read).
    const errorAt = query ? { key: query.fields[0].key, node: undefined } : mutation!;
    let outcome = 'ok';
    let payload: string;
    try {
      if (query) {
        const data = await service.selection(context, query.fields, query.key);
        payload = `{"data":${data},"extensions":${JSON.stringify({ dbaas: dbaasExtension(context.trace, 'compiled') })}}`;
      } else {
        const { key, field, args, select } = mutation!;
        const mutationField = mutationFields[field];
        const resolve = mutationField.resolve!;
        // No resolve info: these resolvers take arguments and the context only.
        const record: unknown = await resolve(undefined, args, parts.resolverContext(context), undefined as unknown as GraphQLResolveInfo);
        const data = { [key]: project(record, mutationField.type, select, service.pages.defaultSize) };
        payload = JSON.stringify({ data, extensions: { dbaas: dbaasExtension(context.trace, 'compiled') } });
      }
    } catch (err) {
      const loc = errorAt.node?.loc;
      const locations = loc ? [getLocation(loc.source, loc.start)] : undefined;
      const error = parts.formatError({ message: (err as Error).message ?? 'internal error', path: [errorAt.key], locations }, err);
      outcome = typeof error.extensions?.code === 'string' ? error.extensions.code : 'INTERNAL_SERVER_ERROR';
      payload = JSON.stringify({ errors: [error], data: null, extensions: { dbaas: dbaasExtension(context.trace, 'compiled') } });
    }
    if (context.trace.seq !== undefined) res.setHeader('x-dbaas-seq', String(context.trace.seq));
    accounting.finished('graphql', label, outcome);
    // 200 for either media type: the data entry is always there (null at worst).
    res.writeHead(200, { 'content-type': mediaType, 'content-length': Buffer.byteLength(payload) });
    res.end(payload);
  }
}

/**
 * Mutations compiled like queries: the catalogue's writes (single root field, no resolver
 * chain). Each runs through its own GraphQL resolver, called with the arguments graphql-js
 * coerced, so the mapping from GraphQL arguments to the service lives in one place.
 */
const COMPILED_MUTATIONS: ReadonlySet<string> = new Set(Object.keys(writeCatalogue));

/**
 * A record cut to a selection, each leaf serialized by its GraphQL type, as execution
 * would; lists inside it (a ride's riders) cut to the default page, as their resolver does.
 */
function project(value: unknown, type: GraphQLOutputType, select: FieldSelection[] | undefined, pageSize: number): unknown {
  if (value === null || value === undefined) return null;
  const named = getNamedType(type);
  if (isListType(getNullableType(type))) {
    const of = (getNullableType(type) as GraphQLList<GraphQLOutputType>).ofType;
    return (value as unknown[]).slice(0, pageSize).map((v) => project(v, of, select, pageSize));
  }
  if (isLeafType(named)) return named.serialize(value);
  const object = named as GraphQLObjectType;
  const fields = object.getFields();
  const record = value as Record<string, unknown>;
  // No prototype: a client's alias is a key here, and `__proto__: username` must stay one.
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const f of select ?? []) out[f.key] = f.field === '__typename' ? object.name : project(record[f.field], fields[f.field].type, f.select, pageSize);
  return out;
}
