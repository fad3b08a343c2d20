import http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { buildSchema } from 'type-graphql';
import type { Config, Logger } from '../schema';
import type { ClusterView } from './clusterView';
import { isAdminToken, makeFormatError } from './errors';
import type { GqlContext, RequestCounter } from './graphql/context';
import { dbaasPlugin } from './graphql/plugins';
import { resolvers } from './graphql/resolvers';
import type { Orchestrator } from './orchestrator';
import { newRequestContext, type RequestContext, type RideService } from './service';

export interface ServerParts {
  config: Config;
  service: RideService;
  view: ClusterView;
  orchestrator: Orchestrator;
  log: Logger;
}

export interface RunningServer {
  port: number;
  close(): Promise<void>;
}

function requestContextFrom(req: express.Request, adminToken: string): RequestContext {
  const minSeq = Number(req.get('x-dbaas-min-seq') ?? 0);
  return newRequestContext({
    clientMinSeq: Number.isSafeInteger(minSeq) && minSeq > 0 ? minSeq : 0,
    consistency: req.get('x-dbaas-consistency')?.toLowerCase() === 'eventual' ? 'eventual' : 'strong',
    isAdmin: isAdminToken(req.get('authorization'), adminToken),
  });
}

/** /healthz: 200 once a master and at least one slave serve, else 503 with the reason. */
function health(view: ClusterView) {
  return (_req: express.Request, res: express.Response) => {
    const master = view.master();
    const slaves = view.slaves();
    const reasons = [...(master ? [] : ['no master']), ...(slaves.length ? [] : ['no slave serving reads'])];
    res.status(reasons.length ? 503 : 200).json({
      status: reasons.length ? 'unavailable' : 'ok',
      reasons,
      master: master?.id ?? null,
      slaves: slaves.map((s) => s.id),
      epoch: view.epoch,
    });
  };
}

export async function startServer(parts: ServerParts): Promise<RunningServer> {
  const { config, service, view, orchestrator, log } = parts;
  const app = express();
  const httpServer = http.createServer(app);
  const counter: RequestCounter = { count: 0 };

  const schema = await buildSchema({ resolvers, validate: false });
  const apollo = new ApolloServer<GqlContext>({
    schema,
    formatError: makeFormatError(log),
    includeStacktraceInErrorResponses: false,
    plugins: [ApolloServerPluginDrainHttpServer({ httpServer }), dbaasPlugin],
  });
  await apollo.start();

  app.get('/healthz', health(view));
  app.use(
    '/graphql',
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: async ({ req }) => ({
        request: requestContextFrom(req, config.adminToken),
        service,
        view,
        orchestrator,
        counter,
        memo: new Map(),
      }),
    }),
  );

  await new Promise<void>((resolve) => httpServer.listen(config.port, resolve));
  const address = httpServer.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return {
    port,
    close: () => apollo.stop(),
  };
}
