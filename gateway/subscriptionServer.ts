import type http from 'node:http';
import type { Socket } from 'node:net';
import { getOperationAST, GraphQLError, specifiedRules, validate, type DocumentNode, type GraphQLFormattedError, type GraphQLSchema, type ValidationRule } from 'graphql';
import type { Context } from 'graphql-ws';
import { useServer, type Extra } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { GqlContext } from './graphql/context';
import { sharedSubscribe } from './graphql/sharedSubscribe';
import { documentCache, parseDocument, type ParseLimits } from './graphql/parseLimits';
import type { HeaderGetter } from './requestHeaders';
import { clientKey } from './clientKey';

export interface SubscriptionLimits extends ParseLimits {
  /** Largest websocket message, as the HTTP body limit. */
  maxMessageBytes: number;
  maxSubscriptionsPerConnection: number;
  maxSubscriptionsPerAddress: number;
}

export interface SubscriptionServerParts {
  httpServer: http.Server;
  schema: GraphQLSchema;
  /** The same rules as HTTP's, beyond graphql-js' specified ones. */
  validationRules: readonly ValidationRule[];
  limits: SubscriptionLimits;
  formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError;
  /** The request context from connection parameters (they stand in for headers). */
  contextOf(header: HeaderGetter, address: string): GqlContext;
}

/** What these hooks read of graphql-ws' per-socket context. */
type WsContext = Pick<Context<Record<string, unknown> | undefined, Extra>, 'extra' | 'subscriptions'>;

/** The client the per-address limit counts against (an IPv6 one by its /64). */
const addressOf = (request: http.IncomingMessage) => clientKey(request.socket.remoteAddress ?? '');

/** What is open per client address, each taken out when it closes. */
class ByAddress<T> {
  private readonly sets = new Map<string, Set<T>>();

  add(address: string, member: T): number {
    const set = this.sets.get(address) ?? new Set<T>();
    set.add(member);
    this.sets.set(address, set);
    return set.size;
  }

  delete(address: string, member: T): void {
    const set = this.sets.get(address);
    set?.delete(member);
    if (set?.size === 0) this.sets.delete(address);
  }

  of(address: string): Iterable<T> {
    return this.sets.get(address) ?? [];
  }
}
/** Operations open on one socket; graphql-ws lists one from its subscribe message until it ends. */
const openOn = (ctx: WsContext) => Object.keys(ctx.subscriptions).length;
/** The codes Apollo gives the same failures over HTTP. */
const withCode = (error: GraphQLError, code: string) =>
  error.extensions.code ? error : new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, extensions: { code } });
const refused = (message: string) => [new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } })];

const corked = new WeakSet<Socket>();

/**
 * Holds a connection's writes until this turn of the event loop is done, so the messages
 * one batch of log entries gives its subscriptions leave in one write: ws writes each
 * message by itself, and at 10,000 subscribers those writes (on loopback the kernel also
 * does the receiver's work in them) took ~20 % of the gateway's CPU (bench:live). Writes
 * of the same turn are sent in the same order, only together; a message's send callback,
 * which graphql-ws waits for before the subscription's next one, comes after the flush.
 */
function corkForThisTurn(socket: Socket): void {
  if (corked.has(socket)) return;
  corked.add(socket);
  socket.cork();
  process.nextTick(() => {
    corked.delete(socket);
    socket.uncork();
  });
}

/**
 * GraphQL over websockets (graphql-ws on `/graphql`) with the limits of HTTP: message
 * size, query size and tokens, the same validation rules (depth, cost, aliases,
 * introspection), the same error formatting; bounds on open subscriptions per socket and
 * per client address, counted from graphql-ws' own table, so nothing leaks when a socket
 * closes abruptly.
 */
export function startSubscriptionServer(parts: SubscriptionServerParts) {
  const { schema, limits } = parts;
  const rules = [...specifiedRules, ...parts.validationRules];
  const wsServer = new WebSocketServer({ server: parts.httpServer, path: '/graphql', maxPayload: limits.maxMessageBytes });
  // Sockets per address are bounded before any of this, with every other TCP connection
  // (MAX_CONNECTIONS_PER_ADDRESS, gateway/connectionLimits.ts): the per-address
  // subscription count walks an address's contexts, so their number is bounded too.
  const contextsByAddress = new ByAddress<WsContext>();
  const format = (errors: readonly GraphQLError[]) => errors.map((e) => parts.formatError(e.toJSON(), e));
  // Valid documents by text, as on the HTTP paths: 10,000 subscriptions of one query
  // share one parse tree (each of its own held several KB of heap, which every full
  // collection marks) and one validation.
  const documents = documentCache<DocumentNode>();
  const validDocument = (query: string): DocumentNode | GraphQLError[] => {
    const known = documents.get(query);
    if (known) return known;
    const document = parseDocument(query, limits);
    if (document instanceof GraphQLError) return [withCode(document, 'GRAPHQL_PARSE_FAILED')];
    const errors = validate(schema, document, rules);
    if (errors.length) return errors.map((e) => withCode(e, 'GRAPHQL_VALIDATION_FAILED'));
    documents.set(query, document);
    return document;
  };

  const server = useServer(
    {
      schema,
      subscribe: sharedSubscribe(),
      onConnect: (ctx) => void contextsByAddress.add(addressOf(ctx.extra.request), ctx),
      onClose: (ctx) => contextsByAddress.delete(addressOf(ctx.extra.request), ctx),
      onSubscribe: (ctx, _id, payload) => {
        // This operation is already in ctx.subscriptions.
        if (openOn(ctx) > limits.maxSubscriptionsPerConnection) {
          return refused(`at most ${limits.maxSubscriptionsPerConnection} operations may be open on one connection (MAX_SUBSCRIPTIONS_PER_CONNECTION)`);
        }
        let fromAddress = 0;
        for (const other of contextsByAddress.of(addressOf(ctx.extra.request))) fromAddress += openOn(other);
        if (fromAddress > limits.maxSubscriptionsPerAddress) {
          return refused(`at most ${limits.maxSubscriptionsPerAddress} operations may be open from one address (MAX_SUBSCRIPTIONS_PER_ADDRESS)`);
        }
        const document = validDocument(payload.query);
        if (Array.isArray(document)) return document;
        if (!getOperationAST(document, payload.operationName)) return refused('no operation of that name in the document');
        return { schema, document, operationName: payload.operationName, variableValues: payload.variables };
      },
      context: (ctx) => {
        const params: Record<string, unknown> = ctx.connectionParams ?? {};
        return parts.contextOf((name) => (typeof params[name] === 'string' ? params[name] : undefined), ctx.extra.request.socket.remoteAddress ?? '');
      },
      onNext: (ctx, _id, _payload, _args, result) => {
        corkForThisTurn(ctx.extra.request.socket);
        return result.errors ? { ...result, errors: format(result.errors) } : undefined;
      },
      onError: (_ctx, _id, _payload, errors) => format(errors),
    },
    wsServer,
  );
  return {
    dispose: () => server.dispose(),
    /** Websocket connections open now, subscribing or not. */
    openConnections: () => wsServer.clients.size,
  };
}
