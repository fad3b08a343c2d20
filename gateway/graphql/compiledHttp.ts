import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { DbaasError } from '../../schema';
import type { Logger } from '../../platform';
import type { RequestContext } from '../service';
import type { CompiledHandler, GraphqlPost } from './compiledOperations';
import { answerBodyError, answerQueryTooLong, graphqlErrorBody, sendJson } from './httpProtocol';
import type { ParseLimits } from './parseLimits';

/** A Connect-style step (express.json, cors) run on Node's own request and response. */
type Step = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

export interface CompiledHttpParts {
  compiled: CompiledHandler;
  /** express.json with the GraphQL body limit: the same parser, and errors, as Apollo's route. */
  readBody: Step;
  /** CORS as the app applies it to every route; absent when no origin is listed. */
  cors?: Step;
  parseLimits: ParseLimits;
  /** The request context from its headers; throws a DbaasError for a malformed one. */
  contextOf(req: IncomingMessage): RequestContext;
  log: Logger;
}

/**
 * POST /graphql for the compiled operations, served from Node's HTTP server before
 * Express: going through Express cost about half the gateway's CPU per compiled request
 * (bench/NOTES.md). The steps are the ones the app's
 * /graphql route takes (CORS, headers, body, query length), with the same answers to
 * errors. Everything else, and what the compiled path declines (its body parsed), goes
 * to `app`.
 */
export function compiledHttp(parts: CompiledHttpParts, app: RequestListener): RequestListener {
  const { compiled, readBody, cors, parseLimits, log } = parts;
  // Express caught what its handlers threw; here an exception would reach Node's event
  // emitter and end the process, so every step answers one with a 500.
  const serve = (req: GraphqlPost, res: ServerResponse) => {
    let context: RequestContext;
    try {
      context = parts.contextOf(req);
    } catch (err) {
      if (!(err instanceof DbaasError)) return failed(err, res);
      return sendJson(res, 400, graphqlErrorBody(err));
    }
    readBody(req, res, (err) => {
      try {
        if (err !== undefined) return answerBodyError(err, req, res) || failed(err, res);
        if (answerQueryTooLong((req.body as { query?: unknown } | undefined)?.query, parseLimits, req, res)) return;
        compiled(req, res, context, () => app(req, res)).catch((e: unknown) => failed(e, res));
      } catch (e) {
        failed(e, res);
      }
    });
  };
  const failed = (err: unknown, res: ServerResponse) => {
    log.error({ err }, 'compiled GraphQL request failed');
    if (res.headersSent) return res.destroy();
    sendJson(res, 500, { errors: [{ message: 'internal error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
  };
  return (req, res) => {
    if (req.method !== 'POST' || !isGraphqlPath(req.url)) return app(req, res);
    try {
      if (cors) cors(req, res, (err) => (err === undefined ? serve(req, res) : failed(err, res)));
      else serve(req, res);
    } catch (err) {
      failed(err, res);
    }
  };
}

/**
 * `/graphql` as Express matches the route: any case, a trailing slash and a query string
 * allowed. A request line with a whole URL (`POST http://host/graphql`) goes to Express.
 */
function isGraphqlPath(url: string | undefined): boolean {
  if (url === undefined) return false;
  const query = url.indexOf('?');
  const path = (query < 0 ? url : url.slice(0, query)).toLowerCase();
  return path === '/graphql' || path === '/graphql/';
}
