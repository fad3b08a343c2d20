import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { DbaasError, forbidden } from '../schema';
import { type Logger } from '../platform';
import { timingSafeEqual } from 'node:crypto';

/**
 * The one place failures become client errors: a DbaasError keeps its code and message;
 * GraphQL's own errors (syntax, validation, coercion) keep theirs; anything else is an
 * INTERNAL_SERVER_ERROR with no detail. Never a stack trace.
 */
export function makeFormatError(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    if (original instanceof DbaasError) {
      return { message: original.message, path: formatted.path, locations: formatted.locations, extensions: { code: original.code } };
    }
    // graphql-js' own execution errors (an argument that fails coercion at run time) are
    // about the request, not about us. Apollo's request errors (BAD_REQUEST,
    // PERSISTED_QUERY_NOT_FOUND, …) are GraphQLErrors too, with a code of their own to keep.
    if (original instanceof GraphQLError && !original.originalError && original.extensions.code === undefined) {
      return { message: formatted.message, path: formatted.path, locations: formatted.locations, extensions: { code: 'BAD_USER_INPUT' } };
    }
    const code = formatted.extensions?.code;
    if (typeof code === 'string' && code !== 'INTERNAL_SERVER_ERROR') {
      return { message: formatted.message, path: formatted.path, locations: formatted.locations, extensions: { code } };
    }
    log.error({ err: original }, 'unexpected error');
    return { message: 'internal error', path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  };
}

/** Compares a bearer token in constant time. */
export function isAdminToken(header: string | undefined, adminToken: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1].trim());
  const expected = Buffer.from(adminToken);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function requireAdmin(isAdmin: boolean): void {
  if (!isAdmin) throw forbidden('admin operation: send Authorization: Bearer <DBAAS_ADMIN_TOKEN>');
}
