import http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import { InMemoryLRUCache } from '@apollo/utils.keyvaluecache';
import cors from 'cors';
import express from 'express';
import { NoSchemaIntrospectionCustomRule, type DocumentNode } from 'graphql';
import { DbaasError } from '../schema';
import { type Config, type Logger } from '../platform';
import type { Autoscaler } from './autoscaler';
import { limitConnections, totalConnectionBound } from './connectionLimits';
import { limitUnreadAnswers } from './unreadAnswers';
import { makeFormatError } from './errors';
import type { GqlContext } from './graphql/context';
import { RequestAccounting } from './requestAccounting';
import { healthz, livez, type HealthSources } from './health';
import { compiledHttp } from './graphql/compiledHttp';
import { compiledOperations } from './graphql/compiledOperations';
import { graphqlBodyErrors, graphqlErrorBody, graphqlOverHttpPlugin, queryTextLimit } from './graphql/httpProtocol';
import { queryLimits } from './graphql/limits';
import { DOCUMENT_CACHE } from './graphql/parseLimits';
import { dbaasPlugin } from './graphql/plugins';
import { clusterEventsPubSub } from './graphql/resolvers';
import { buildGatewaySchema } from './graphql/schema';
import type { Metrics } from './metrics';
import type { Orchestrator } from './orchestrator';
import { playgroundRouter } from './playground';
import { restRouter } from './rest';
import { headersOf, requestContextFrom } from './requestHeaders';
import type { RequestContext, RideService } from './service';
import type { LiveFeed } from './live/liveFeed';
import { startSubscriptionServer } from './subscriptionServer';

/** Largest GraphQL request body (HTTP) or websocket message. */
const GRAPHQL_BODY_LIMIT_BYTES = 2 ** 20;

export interface ServerParts {
  config: Config;
  service: RideService;
  orchestrator: Orchestrator;
  autoscaler: Autoscaler;
  metrics: Metrics;
  /** Ride changes from the log, for live subscriptions. */
  live: LiveFeed;
  log: Logger;
  /** Whether the gateway reaches each service right now (for /healthz). */
  dependencies: HealthSources['dependencies'];
}

export interface RunningServer {
  port: number;
  close(): Promise<void>;
}

/** HTTP (GraphQL, /healthz, /livez) and graphql-ws subscriptions on one port. */
export async function startServer(parts: ServerParts): Promise<RunningServer> {
  const { config, service, orchestrator, autoscaler, metrics, live, log } = parts;
  const app = express();
  // API answers are never revalidated: hashing every body for an ETag is wasted work.
  app.disable('etag');
  app.disable('x-powered-by');
  // The compiled path goes first, outside Express (graphql/compiledHttp.ts); the listener is
  // set below, once the app's routes are.
  const httpServer = http.createServer();
  limitConnections(httpServer, { maxPerAddress: config.maxConnectionsPerAddress, maxTotal: totalConnectionBound() }, (reason) => metrics.connectionsRefused.inc({ reason }), log);
  const accounting = new RequestAccounting({ count: 0 }, metrics);
  const { counter } = accounting;
  const contextFor = (request: RequestContext): GqlContext => ({ request, service, orchestrator, autoscaler, counter, live, memo: new Map(), eventMemos: new WeakMap() });

  const clusterEvents = clusterEventsPubSub(orchestrator);
  metrics.openSubscriptions = () => clusterEvents.open + live.subscriptions;
  const schema = await buildGatewaySchema(clusterEvents);
  const formatError = makeFormatError(log);
  // Introspection is what explorers, codegen and client devtools read the schema with;
  // GRAPHQL_INTROSPECTION=off hides it (on every path: compiled, Apollo, websocket).
  const validationRules = [
    ...queryLimits({ maxDepth: config.maxQueryDepth, maxAliases: config.maxAliases, maxCost: config.maxQueryCost, listFactor: config.queryCostListFactor }),
    ...(config.introspection ? [] : [NoSchemaIntrospectionCustomRule]),
  ];
  const parseLimits = { maxQueryBytes: config.maxQueryBytes, maxTokens: config.maxQueryTokens };
  const subscriptions = startSubscriptionServer({
    httpServer,
    schema,
    validationRules,
    formatError,
    limits: {
      ...parseLimits,
      maxMessageBytes: GRAPHQL_BODY_LIMIT_BYTES,
      maxSubscriptionsPerConnection: config.maxSubscriptionsPerConnection,
      maxSubscriptionsPerAddress: config.maxSubscriptionsPerAddress,
    },
    contextOf: (header, address) => contextFor(requestContextFrom(header, config.adminToken, address)),
  });
  metrics.openConnections = subscriptions.openConnections;

  // Computed once per request by checkHeaders, which answers malformed headers with 400.
  const contextOf = (req: express.Request): RequestContext =>
    (req.res?.locals.requestContext as RequestContext | undefined) ?? requestContextFrom((n) => req.get(n), config.adminToken, req.ip ?? '');
  const checkHeaders = (errorBody: (error: DbaasError) => unknown) => (req: express.Request, res: express.Response, next: express.NextFunction) => {
    try {
      res.locals.requestContext = requestContextFrom((n) => req.get(n), config.adminToken, req.ip ?? '');
    } catch (err) {
      if (!(err instanceof DbaasError)) throw err;
      res.status(400).json(errorBody(err));
      return;
    }
    next();
  };
  const apollo = new ApolloServer<GqlContext>({
    schema,
    // Parsed and validated documents, by query hash, bounded as the compiled path's are.
    documentStore: new InMemoryLRUCache<DocumentNode>({
      maxSize: DOCUMENT_CACHE.maxSize,
      maxEntrySize: DOCUMENT_CACHE.maxEntrySize,
      sizeCalculation: (document) => DOCUMENT_CACHE.sizeOfText(document.loc?.end ?? DOCUMENT_CACHE.maxEntrySize),
    }),
    formatError,
    validationRules,
    introspection: config.introspection,
    parseOptions: { maxTokens: config.maxQueryTokens },
    includeStacktraceInErrorResponses: false,
    plugins: [
      // ridedb sets no cache hints; the plugin would wrap every field resolver for nothing.
      ApolloServerPluginCacheControlDisabled(),
      // Apollo's own landing page loads from a CDN; ours (playground.ts) is served locally.
      ApolloServerPluginLandingPageDisabled(),
      ApolloServerPluginDrainHttpServer({ httpServer }),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await subscriptions.dispose();
            },
          };
        },
      },
      dbaasPlugin(accounting),
      graphqlOverHttpPlugin<GqlContext>(),
    ],
  });
  await apollo.start();

  // Cross-origin browser access only for the origins an operator lists.
  const corsStep = config.corsOrigins.length ? cors({ origin: config.corsOrigins }) : undefined;
  if (corsStep) app.use(corsStep);
  app.use('/graphql', checkHeaders(graphqlErrorBody));
  app.use(
    '/api/v1',
    checkHeaders((e) => ({ error: { code: e.code, message: e.message } })),
  );
  const graphqlBody = express.json({ limit: GRAPHQL_BODY_LIMIT_BYTES });
  const checkQueryText = queryTextLimit(parseLimits);
  app.use(playgroundRouter());
  app.get('/healthz', healthz({ dependencies: parts.dependencies, cluster: orchestrator }));
  app.get('/livez', livez());
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use('/api/v1', restRouter({ service, orchestrator, accounting, log, contextOf }));
  app.use(
    '/graphql',
    graphqlBody,
    checkQueryText,
    expressMiddleware(apollo, { context: async ({ req }) => contextFor(contextOf(req)) }),
    // Answers express.json's errors here (the compiled path answers its own the same way).
    graphqlBodyErrors,
  );

  // What the compiled path declines reaches Apollo through the app, its body already parsed.
  const listener = config.compiledOperations
    ? compiledHttp(
        {
          compiled: compiledOperations({ schema, validationRules, parseLimits, service, accounting, formatError, resolverContext: contextFor }),
          readBody: graphqlBody,
          cors: corsStep,
          parseLimits,
          contextOf: (req) => requestContextFrom(headersOf(req), config.adminToken, req.socket.remoteAddress ?? ''),
          log,
        },
        app,
      )
    : app;
  const unread = limitUnreadAnswers(
    listener,
    { maxPipelined: config.maxPipelinedRequests, maxUnsentBytes: config.maxUnsentAnswerBytes },
    (reason) => metrics.connectionsClosed.inc({ reason }),
    log,
  );
  httpServer.on('request', unread.listener);
  await new Promise<void>((resolve) => httpServer.listen(config.port, resolve));
  const address = httpServer.address();
  return {
    port: typeof address === 'object' && address ? address.port : config.port,
    close: async () => {
      unread.stop();
      await apollo.stop();
    },
  };
}
