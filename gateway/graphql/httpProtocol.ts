import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApolloServerPlugin } from '@apollo/server';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { GraphQLError, OperationTypeNode } from 'graphql';
import type { DbaasError } from '../../schema';
import Negotiator from 'negotiator';
import { queryTextError, type ParseLimits } from './parseLimits';

/**
 * GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/) where Apollo
 * alone does not get it right, shared by the compiled path and Apollo's: the response
 * media type, the status of request errors per media type, subscriptions over POST and
 * request bodies that are not JSON. docs/architecture.md ("GraphQL over HTTP") sums it up.
 */

export const APPLICATION_JSON = 'application/json; charset=utf-8';
export const GRAPHQL_RESPONSE_JSON = 'application/graphql-response+json; charset=utf-8';
/** Apollo's third candidate (subscription callbacks): only Apollo answers it. */
const JSON_GRAPHQL_CALLBACK = 'application/json; callbackSpec=1.0; charset=utf-8';
const CANDIDATES = [APPLICATION_JSON, GRAPHQL_RESPONSE_JSON, JSON_GRAPHQL_CALLBACK];

// Negotiation costs several microseconds, a real share of a compiled request; clients send
// the same few Accept headers, so remember the answers (bounded: any header is accepted).
const negotiated = new Map<string, string | null>();

/**
 * The media type of a response to this Accept header, chosen as Apollo chooses it (the same
 * negotiator and candidates): application/json when the header is missing or equally
 * acceptable and listed first, graphql-response+json when the client prefers it, null when
 * neither is acceptable (Apollo answers that with 406).
 */
export function responseMediaType(accept: string | undefined): string | null {
  if (!accept) return APPLICATION_JSON;
  let type = negotiated.get(accept);
  if (type === undefined) {
    type = new Negotiator({ headers: { accept } }).mediaType(CANDIDATES) ?? null;
    if (negotiated.size >= 64) negotiated.clear();
    negotiated.set(accept, type);
  }
  return type;
}

/** Errors about the request itself that the pipeline reports with 400 and no data. */
const REQUEST_ERROR_CODES = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT', 'OPERATION_RESOLUTION_FAILURE']);

/**
 * - Status codes by media type: the spec wants 400 for a document that fails to parse or
 *   validate, or variables that fail coercion, only with graphql-response+json; a legacy
 *   application/json client gets 200 for every well-formed request (a proxy or client that
 *   treats 400 as a transport failure would hide the GraphQL errors). Apollo 5 answers 400
 *   to both, and has no option for it.
 * - A subscription over HTTP would run its resolver without an event (an internal error):
 *   say where subscriptions are served instead.
 */
export function graphqlOverHttpPlugin<Context extends object>(): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, request }) {
          if (operation?.operation !== OperationTypeNode.SUBSCRIPTION) return;
          const host = request.http?.headers.get('host') ?? 'localhost';
          throw new GraphQLError(`subscriptions need the graphql-ws protocol on ws://${host}/graphql (a WebSocket), not an HTTP request`, {
            extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
          });
        },
        async willSendResponse({ request, response }) {
          if (response.http.status !== 400 || response.body.kind !== 'single') return;
          if (responseMediaType(request.http?.headers.get('accept')) === GRAPHQL_RESPONSE_JSON) return;
          const errors = response.body.singleResult.errors ?? [];
          if (errors.length && errors.every((e) => REQUEST_ERROR_CODES.has(String(e.extensions?.code)))) response.http.status = 200;
        },
      };
    },
  };
}

interface BodyParserError {
  type: string;
  status: number;
  message: string;
}

/** body-parser's errors are http-errors with a `type` (e.g. entity.parse.failed) and a status. */
function isBodyParserError(err: unknown): err is BodyParserError {
  if (typeof err !== 'object' || err === null) return false;
  const { type, status } = err as Partial<BodyParserError>;
  return typeof type === 'string' && typeof status === 'number' && status >= 400 && status < 500;
}

/**
 * After express.json on /graphql: a body that is not JSON (or too large, or in an unknown
 * charset) answers as a GraphQL error in the negotiated media type with the parser's
 * status, instead of Express's HTML page and a stack trace in the log. Returns false for
 * any other error, which the caller passes on.
 */
export function answerBodyError(err: unknown, req: IncomingMessage, res: ServerResponse): boolean {
  if (!isBodyParserError(err)) return false;
  const message = err.type === 'entity.parse.failed' ? `the request body is not valid JSON: ${err.message}` : `the request body was refused: ${err.message}`;
  answerError(req, res, err.status, { message, extensions: { code: 'BAD_REQUEST' } });
  return true;
}

export const graphqlBodyErrors: ErrorRequestHandler = (err: unknown, req, res, next) => {
  if (!answerBodyError(err, req, res)) next(err);
};

/**
 * Before anything parses a document: a `query` (POST body or GET parameter) over the byte
 * limit answers 413 as a GraphQL error, on the compiled path and Apollo's alike. Returns
 * whether it answered.
 */
export function answerQueryTooLong(query: unknown, limits: ParseLimits, req: IncomingMessage, res: ServerResponse): boolean {
  const error = typeof query === 'string' ? queryTextError(query, limits) : null;
  if (!error) return false;
  answerError(req, res, 413, { message: error.message, extensions: error.extensions });
  return true;
}

export function queryTextLimit(limits: ParseLimits): RequestHandler {
  return (req, res, next) => {
    const fromBody = (req.body as { query?: unknown } | undefined)?.query;
    if (!answerQueryTooLong(typeof fromBody === 'string' ? fromBody : req.query.query, limits, req, res)) next();
  };
}

/** A request error as GraphQL over HTTP answers it: `errors` alone, in the negotiated media type. */
function answerError(req: IncomingMessage, res: ServerResponse, status: number, error: { message: string; extensions: unknown }): void {
  sendJson(res, status, { errors: [error] }, responseMediaType(req.headers.accept) ?? APPLICATION_JSON);
}

/** A ridedb error found before any GraphQL (a malformed header), as a GraphQL error body. */
export function graphqlErrorBody(error: DbaasError): { errors: Array<{ message: string; extensions: { code: string } }> } {
  return { errors: [{ message: error.message, extensions: { code: error.code } }] };
}

/** The whole response: `body` as JSON text with its length, in one write. */
export function sendJson(res: ServerResponse, status: number, body: unknown, contentType: string = APPLICATION_JSON): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}
