import { AREAS } from '../schema';

describe('areas', () => {
  // Migration 003 checks rides against ids 1-12 written out; a new area needs a migration
  // that widens that check (docs/operations.md, "Adding an area").
  it('are exactly the ids the rides check of migration 003 allows', () => {
    expect(AREAS.map((a) => a.id)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });
});
