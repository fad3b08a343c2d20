import { GraphQLError, parse, type DocumentNode } from 'graphql';
import { LRUCache } from 'lru-cache';

/**
 * Bounds on a GraphQL document before and while it is parsed, the same on every path
 * (compiled, Apollo, websocket). A parse tree takes tens of times its text in heap, so an
 * unbounded `query` under the 1 MB body limit could exhaust the gateway's heap.
 */
export interface ParseLimits {
  /** Longest `query` text accepted, in UTF-8 bytes. */
  maxQueryBytes: number;
  /** graphql-js stops parsing past this many tokens. */
  maxTokens: number;
}

/** A document too large or too deeply nested to parse: the client's error. */
export function queryTextError(query: string, limits: ParseLimits): GraphQLError | null {
  // Bytes ≤ 3 × UTF-16 units: only long texts need counting.
  if (query.length * 3 <= limits.maxQueryBytes) return null;
  const bytes = Buffer.byteLength(query);
  if (bytes <= limits.maxQueryBytes) return null;
  // BAD_REQUEST, as for a body over the size limit (gateway/graphql/httpProtocol.ts).
  return new GraphQLError(`the query is ${bytes} bytes; the limit is ${limits.maxQueryBytes} (MAX_QUERY_BYTES)`, { extensions: { code: 'BAD_REQUEST' } });
}

/**
 * Parses within the limits. Syntax errors, the token limit and nesting deep enough to
 * overflow the parser's stack all come back as a GraphQLError, never as a thrown 500.
 */
export function parseDocument(query: string, limits: ParseLimits): DocumentNode | GraphQLError {
  const tooLarge = queryTextError(query, limits);
  if (tooLarge) return tooLarge;
  try {
    return parse(query, { maxTokens: limits.maxTokens });
  } catch (err) {
    if (err instanceof GraphQLError) return err;
    if (err instanceof RangeError) return new GraphQLError('the document is nested too deeply to parse', { extensions: { code: 'BAD_USER_INPUT' } });
    throw err;
  }
}

/**
 * The bounds of every parsed-document cache (Apollo's document store, the compiled path's
 * and the websocket's), in estimated heap bytes: a parsed document takes roughly ten
 * times its text. 4 MB of documents; a text above 16 KB is rare and would push many
 * everyday ones out, so it is parsed each time instead. Apollo's own default (30 MB, sized
 * by JSON text, which is several times smaller than the heap a document takes) let a
 * client fill the heap.
 */
export const DOCUMENT_CACHE = {
  maxSize: 4 * 2 ** 20,
  maxEntrySize: 10 * 16_384,
  sizeOfText: (chars: number) => 10 * chars + 1,
} as const;

/** A cache by query text within DOCUMENT_CACHE's bounds: clients that inline literals (every request a new text) cannot grow the gateway past its heap bound. */
export function documentCache<V extends NonNullable<unknown>>(): LRUCache<string, V> {
  return new LRUCache<string, V>({
    maxSize: DOCUMENT_CACHE.maxSize,
    maxEntrySize: DOCUMENT_CACHE.maxEntrySize,
    sizeCalculation: (_v, query) => DOCUMENT_CACHE.sizeOfText(query.length),
  });
}
