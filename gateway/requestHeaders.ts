import type { IncomingMessage } from 'node:http';
import { badInput } from '../schema';
import { isAdminToken } from './errors';
import { newRequestContext, type RequestContext } from './service';

/** Reads one request header (HTTP) or connection parameter (graphql-ws) by lower-case name. */
export type HeaderGetter = (name: string) => string | undefined;

/** An HTTP request's headers as Express's req.get reads them (repeated ones joined, as Node joins most). */
export function headersOf(req: IncomingMessage): HeaderGetter {
  return (name) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
}

/**
 * An Idempotency-Key (IETF httpapi draft): a structured-field string, so it may come in
 * quotes. Visible ASCII except quote and backslash, at most 128 characters: enough for a
 * UUID, a ULID or a base64 digest, and cheap to hash.
 */
const IDEMPOTENCY_KEY = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/;
const SEQ = /^\d{1,16}$/;

/**
 * The request context from a client's headers. A header that is present but malformed is
 * BAD_USER_INPUT, never silently ignored: a client that sends X-DBaaS-Min-Seq relies on it.
 */
export function requestContextFrom(header: HeaderGetter, adminToken: string, clientAddress: string): RequestContext {
  const minSeqText = header('x-dbaas-min-seq')?.trim();
  if (minSeqText !== undefined && minSeqText !== '' && !(SEQ.test(minSeqText) && Number.isSafeInteger(Number(minSeqText)))) {
    throw badInput(`X-DBaaS-Min-Seq must be a log position (a non-negative integer), not ${JSON.stringify(minSeqText.slice(0, 40))}`);
  }
  const consistency = header('x-dbaas-consistency')?.trim().toLowerCase();
  if (consistency !== undefined && consistency !== '' && consistency !== 'strong' && consistency !== 'eventual') {
    throw badInput('X-DBaaS-Consistency must be strong or eventual');
  }
  let idempotencyKey = header('idempotency-key')?.trim();
  if (idempotencyKey !== undefined) {
    if (/^".*"$/.test(idempotencyKey)) idempotencyKey = idempotencyKey.slice(1, -1);
    if (!IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw badInput('Idempotency-Key must be 1-128 visible ASCII characters without quotes or backslashes (a UUID, for example)');
    }
  }
  return newRequestContext({
    clientAddress,
    clientMinSeq: minSeqText ? Number(minSeqText) : 0,
    consistency: consistency === 'eventual' ? 'eventual' : 'strong',
    isAdmin: isAdminToken(header('authorization'), adminToken),
    idempotencyKey,
  });
}
