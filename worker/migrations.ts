import { AREAS, knownAreaSql } from '../schema';

/**
 * SQL migrations of a worker's database, applied in order, each once.
 * Domain tables hold only replicated data, so every caught-up replica's domain tables are
 * identical. Bookkeeping tables start with `_` and differ per worker.
 */
export interface Migration {
  name: string;
  sql: string;
}

const sqlText = (s: string) => `'${s.replace(/'/g, "''")}'`;
const areaRows = (areas: ReadonlyArray<{ id: number; name: string }>) => areas.map((a) => `(${a.id}, ${sqlText(a.name)})`).join(',\n  ');

/**
 * The 12 areas ridedb first shipped (invented, not the original data). 001 still creates
 * them, so that it means the same on every database; 004 replaces them by AREAS.
 */
const FIRST_AREAS = [
  'Kempegowda Bus Station',
  'Koramangala',
  'Indiranagar',
  'Whitefield',
  'Electronic City',
  'Jayanagar',
  'Malleshwaram',
  'Hebbal',
  'Banashankari',
  'Yelahanka',
  'Marathahalli',
  'HSR Layout',
].map((name, i) => ({ id: i + 1, name }));

export const MIGRATIONS: readonly Migration[] = [
  {
    name: '001_domain',
    sql: `
CREATE TABLE areas (
  id   integer PRIMARY KEY,
  name text NOT NULL UNIQUE
);
INSERT INTO areas (id, name) VALUES
  ${areaRows(FIRST_AREAS)};

CREATE TABLE users (
  username      text PRIMARY KEY,
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL
);

-- A ride's id is the log seq of the write that created it (see createRide).
CREATE TABLE rides (
  id          bigint PRIMARY KEY,
  created_by  text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
  ts          timestamptz NOT NULL,
  source      integer NOT NULL REFERENCES areas (id),
  destination integer NOT NULL REFERENCES areas (id),
  CHECK (source <> destination)
);
CREATE INDEX rides_route_ts ON rides (source, destination, ts);
CREATE INDEX rides_created_by ON rides (created_by);

CREATE TABLE ride_riders (
  ride_id   bigint NOT NULL REFERENCES rides (id) ON DELETE CASCADE,
  username  text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
  joined_at timestamptz NOT NULL,
  PRIMARY KEY (ride_id, username)
);
CREATE INDEX ride_riders_username ON ride_riders (username);
`,
  },
  {
    name: '002_bookkeeping',
    sql: `
-- Every applied write, by seq: request_id makes writes exactly-once across failovers,
-- result is what a retried write returns. The arguments stay in the durable log (the
-- stream); keeping them here too would double the cost of every replicated write.
-- json, not jsonb: stored and returned whole, never queried inside, so never parsed.
CREATE TABLE _dbaas_log (
  seq        bigint PRIMARY KEY,
  epoch      integer NOT NULL,
  request_id text NOT NULL UNIQUE,
  op         text NOT NULL,
  result     json NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row: how far this worker has applied the durable log.
CREATE TABLE _dbaas_state (
  singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  applied_seq   bigint NOT NULL,
  epoch         integer NOT NULL,
  stream_offset bigint NOT NULL
);
INSERT INTO _dbaas_state (applied_seq, epoch, stream_offset) VALUES (0, 0, 0);
`,
  },
  {
    name: '003_area_checks',
    sql: `
-- Areas are fixed reference data: only 001 writes them (no operation does, not even
-- clearDatabase, and snapshots leave them out). A CHECK on the same ids enforces what the
-- two foreign keys did without their per-row trigger, which was half the cost of
-- inserting a ride (a replica catching up inserts thousands per batch). Adding an area
-- takes a migration that inserts it and widens this check. The ids are written out, not
-- taken from ./areas, so that this migration means the same on every database forever.
ALTER TABLE rides
  DROP CONSTRAINT rides_source_fkey,
  DROP CONSTRAINT rides_destination_fkey,
  ADD CONSTRAINT rides_known_areas CHECK (source BETWEEN 1 AND 12 AND destination BETWEEN 1 AND 12);
`,
  },
  {
    name: '004_original_areas',
    sql: `
-- The areas of the original RideShare data (schema/areas.ts) replace the 12 invented
-- ones. Rides keep their ids and their area ids; ids 1-12 only change name. Names are
-- unique, so the old ones step aside first. Like 003's, this check is what the rides
-- table allows from now on: a change to AREAS needs a new migration.
UPDATE areas SET name = '_old_' || id;
INSERT INTO areas (id, name) VALUES
  ${areaRows(AREAS)}
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;
ALTER TABLE rides
  DROP CONSTRAINT rides_known_areas,
  ADD CONSTRAINT rides_known_areas CHECK (${knownAreaSql('source')} AND ${knownAreaSql('destination')});
`,
  },
  {
    name: '005_idempotency_fingerprint',
    sql: `
-- A client's Idempotency-Key is the request id of its write; the fingerprint (a digest of
-- the operation and the client's arguments) tells a retry from a different write that
-- reuses the key (CONFLICT). NULL for writes without a client key.
ALTER TABLE _dbaas_log ADD COLUMN fingerprint text;
`,
  },
  {
    name: '006_keyset_indexes',
    sql: `
-- Ride lists are pages in (ts, id) order (LIMIT n, after a cursor). With ts alone in the
-- index, PostgreSQL fetched every matching ride and sorted them for the top n: a route's
-- upcoming page cost grew with the route (213 ms for 2,000 rides). With id too, the
-- index yields the page in order and stops after n rows; with the rest of the row
-- included, a page is an index-only scan of a few adjacent pages instead of one heap
-- page per ride, rides of a route being spread over the whole table. A ride's riders
-- likewise, in the order they joined.
CREATE INDEX rides_route_page ON rides (source, destination, ts, id) INCLUDE (created_by);
DROP INDEX rides_route_ts;
CREATE INDEX rides_created_by_page ON rides (created_by, ts, id) INCLUDE (source, destination);
DROP INDEX rides_created_by;
CREATE INDEX ride_riders_page ON ride_riders (ride_id, joined_at, username);
`,
  },
];
