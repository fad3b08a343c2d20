/** The subset of pg's client that operations need (a Pool, or a PoolClient in a transaction). */
export interface Sql {
  query(text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>>; rowCount: number | null }>;
}
