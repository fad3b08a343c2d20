import { z } from 'zod';

/**
 * A GraphQL query's data selection, as the gateway sends it to a slave (the `selection`
 * read of the catalogue); worker/selectionSql.ts answers it with one SQL statement that
 * builds the whole `data` object as JSON text. One statement means one snapshot for every root
 * field, PostgreSQL computes only the fields asked for, and the text goes back to the
 * client without being parsed and re-encoded on the way.
 *
 * The gateway has already validated the document against the GraphQL schema, collected
 * its fields (fragments, @skip/@include) and coerced the arguments; the slave checks the
 * tree again against the types below, since nothing on the broker is trusted blindly.
 */
export interface FieldSelection {
  /** The response key: the alias, or the field name. */
  key: string;
  field: string;
  /** Root fields only; nested fields take no arguments. */
  args?: Record<string, unknown>;
  /** Object fields: what to select inside. */
  select?: FieldSelection[];
}

/** json_build_object takes at most 100 arguments: 50 keys. */
export const MAX_KEYS_PER_OBJECT = 50;
/** Response keys and field names; the gateway plans nothing longer. */
export const MAX_NAME_LENGTH = 64;
const GRAPHQL_NAME = new RegExp(`^[_A-Za-z][_0-9A-Za-z]{0,${MAX_NAME_LENGTH - 1}}$`);
export const fieldSelectionSchema: z.ZodType<FieldSelection> = z.lazy(() =>
  z.object({
    key: z.string().regex(GRAPHQL_NAME),
    field: z.string().regex(GRAPHQL_NAME),
    args: z.record(z.string(), z.unknown()).optional(),
    select: z.array(fieldSelectionSchema).min(1).max(MAX_KEYS_PER_OBJECT).optional(),
  }),
);
export const selectionArgsSchema = z.object({ fields: z.array(fieldSelectionSchema).min(1).max(MAX_KEYS_PER_OBJECT) });

/**
 * A selection read at a known log position (the `selectionAt` read): the `data` JSON text,
 * the replica's applied seq in the same snapshot, and how long until time alone changes
 * the answer (ms until the earliest upcoming ride of an upcoming-only route it lists
 * departs, by the replica's clock), or null. Time left, not a time of day, so that the
 * reader needs no clock in step with the replica's.
 */
export interface SelectionAnswer {
  seq: number;
  data: string;
  expiresInMs: number | null;
}

/** Nesting a slave builds; the gateway sends deeper documents down the resolver path. */
export const MAX_SELECTION_DEPTH = 16;

/** Whole records, as the catalogue's reads return them (./records): the selections a worker builds them with, and what live snapshots select. */
const USER_RECORD: FieldSelection[] = ['username', 'createdAt'].map((field) => ({ key: field, field }));
const AREA_RECORD: FieldSelection[] = ['id', 'name'].map((field) => ({ key: field, field }));
export const RECORD_SELECTIONS: Record<'Ride' | 'User' | 'Area', FieldSelection[]> = {
  User: USER_RECORD,
  Area: AREA_RECORD,
  Ride: [
    { key: 'id', field: 'id' },
    { key: 'cursor', field: 'cursor' },
    { key: 'createdBy', field: 'createdBy', select: USER_RECORD },
    { key: 'timestamp', field: 'timestamp' },
    { key: 'source', field: 'source', select: AREA_RECORD },
    { key: 'destination', field: 'destination', select: AREA_RECORD },
    { key: 'riders', field: 'riders', select: USER_RECORD },
  ],
};
