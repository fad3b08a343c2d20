import { fromOldTimestamp, toOldTimestamp } from '../../gateway/rest';

describe('the old timestamp format', () => {
  it('converts DD-MM-YYYY:SS-MM-HH both ways and rejects impossible times', () => {
    expect(fromOldTimestamp('25-11-2026:07-05-13')).toBe('2026-11-25T13:05:07.000Z');
    expect(toOldTimestamp('2026-11-25T13:05:07.000Z')).toBe('25-11-2026:07-05-13');
    expect(() => fromOldTimestamp('31-02-2026:00-00-00')).toThrow();
    expect(() => fromOldTimestamp('2026-11-25T13:05:07Z')).toThrow();
    // Years below 100 are those years, not 1900-1999.
    expect(fromOldTimestamp('01-01-0030:00-00-00')).toBe('0030-01-01T00:00:00.000Z');
    expect(toOldTimestamp('0030-01-01T00:00:00.000Z')).toBe('01-01-0030:00-00-00');
  });
});
