import http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import { InMemoryLRUCache } from '@apollo/utils.keyvaluecache';
import cors from 'cors';
import express from 'express';
import type { DocumentNode } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { buildSchema } from 'type-graphql';
import { WebSocketServer } from 'ws';
import type { Config, Logger } from '../schema';
import type { Autoscaler } from './autoscaler';
import { isAdminToken, makeFormatError } from './errors';
import type { GqlContext, RequestCounter } from './graphql/context';
import { compiledOperations } from './graphql/compiledOperations';
import { queryLimits } from './graphql/limits';
import { dbaasPlugin } from './graphql/plugins';
import { clusterEventsPubSub, resolvers } from './graphql/resolvers';
import type { Metrics } from './metrics';
import type { Orchestrator } from './orchestrator';
import { playgroundRouter } from './playground';
import { restRouter } from './rest';
import { newRequestContext, type RequestContext, type RideService } from './service';

export interface ServerParts {
  config: Config;
  service: RideService;
  orchestrator: Orchestrator;
  autoscaler: Autoscaler;
  metrics: Metrics;
  log: Logger;
}

export interface RunningServer {
  port: number;
  close(): Promise<void>;
}

type HeaderGetter = (name: string) => string | undefined;

function requestContextFrom(header: HeaderGetter, adminToken: string, clientAddress: string): RequestContext {
  const minSeq = Number(header('x-dbaas-min-seq') ?? 0);
  return newRequestContext({
    clientAddress,
    clientMinSeq: Number.isSafeInteger(minSeq) && minSeq > 0 ? minSeq : 0,
    consistency: header('x-dbaas-consistency')?.toLowerCase() === 'eventual' ? 'eventual' : 'strong',
    isAdmin: isAdminToken(header('authorization'), adminToken),
  });
}

/** /healthz: 200 once a master and at least one slave serve, else 503 with the reasons. */
function health(orchestrator: Orchestrator) {
  return (_req: express.Request, res: express.Response) => {
    const master = orchestrator.master();
    const slaves = orchestrator.slaves();
    const reasons = [...(master ? [] : ['no master']), ...(slaves.length ? [] : ['no slave serving reads'])];
    res.status(reasons.length ? 503 : 200).json({
      status: reasons.length ? 'unavailable' : 'ok',
      reasons,
      master: master?.id ?? null,
      slaves: slaves.map((s) => s.id),
      epoch: orchestrator.epoch,
    });
  };
}

/** HTTP (GraphQL, /healthz) and graphql-ws subscriptions on one port. */
export async function startServer(parts: ServerParts): Promise<RunningServer> {
  const { config, service, orchestrator, autoscaler, metrics, log } = parts;
  const app = express();
  // API answers are never revalidated: hashing every body for an ETag is wasted work.
  app.disable('etag');
  app.disable('x-powered-by');
  const httpServer = http.createServer(app);
  const counter: RequestCounter = { count: 0 };
  const contextFor = (request: RequestContext): GqlContext => ({ request, service, orchestrator, autoscaler, counter, memo: new Map() });

  const schema = await buildSchema({ resolvers, validate: false, pubSub: clusterEventsPubSub(orchestrator) });
  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql' });
  const subscriptions = useServer(
    {
      schema,
      context: (ctx) => {
        const params = (ctx.connectionParams ?? {}) as Record<string, unknown>;
        const address = ctx.extra.request.socket.remoteAddress ?? '';
        return contextFor(requestContextFrom((name) => (typeof params[name] === 'string' ? (params[name] as string) : undefined), config.adminToken, address));
      },
    },
    wsServer,
  );

  const formatError = makeFormatError(log);
  const validationRules = queryLimits(config.maxQueryDepth, config.maxAliases);
  const contextOf = (req: express.Request) => requestContextFrom((n) => req.get(n), config.adminToken, req.ip ?? '');
  const apollo = new ApolloServer<GqlContext>({
    schema,
    // Parsed and validated documents, by query text. Apollo's default allows 30 MB of
    // serialized ASTs (several times that in heap); clients that inline literals instead
    // of variables make every request a new entry, so keep it small.
    documentStore: new InMemoryLRUCache<DocumentNode>({ maxSize: 4 * 2 ** 20 }),
    formatError,
    validationRules,
    includeStacktraceInErrorResponses: false,
    plugins: [
      // ridedb sets no cache hints; the plugin would wrap every field resolver for nothing.
      ApolloServerPluginCacheControlDisabled(),
      // Apollo's own landing page loads from a CDN; ours (playground.ts) is served locally.
      ApolloServerPluginLandingPageDisabled(),
      ApolloServerPluginDrainHttpServer({ httpServer }),
      { async serverWillStart() { return { async drainServer() { await subscriptions.dispose(); } }; } },
      dbaasPlugin(metrics),
    ],
  });
  await apollo.start();

  // Cross-origin browser access only for the origins an operator lists.
  if (config.corsOrigins.length) app.use(cors({ origin: config.corsOrigins }));
  const graphqlBody = express.json({ limit: '1mb' });
  // First, so the bulk of the traffic is not matched against every other route. What it
  // declines continues to Apollo below, with the body already parsed.
  if (config.compiledOperations) {
    app.post('/graphql', graphqlBody, compiledOperations({ schema, validationRules, service, metrics, counter, formatError, contextOf }));
  }
  app.use(playgroundRouter());
  app.get('/healthz', health(orchestrator));
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use(
    '/api/v1',
    restRouter({ service, orchestrator, counter, metrics, log, contextOf }),
  );
  app.use(
    '/graphql',
    graphqlBody,
    expressMiddleware(apollo, { context: async ({ req }) => contextFor(contextOf(req)) }),
  );

  await new Promise<void>((resolve) => httpServer.listen(config.port, resolve));
  const address = httpServer.address();
  return {
    port: typeof address === 'object' && address ? address.port : config.port,
    close: () => apollo.stop(),
  };
}
