import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RESERVED_DESCRIPTORS, totalConnectionBound } from '../../gateway/connectionLimits';

/** A /proc/<pid>/limits file with the open-file limits given. */
function limitsFile(soft: string, hard: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ridedb-limits-'));
  const file = path.join(dir, 'limits');
  fs.writeFileSync(
    file,
    [
      'Limit                     Soft Limit           Hard Limit           Units     ',
      'Max processes             unlimited            unlimited            processes ',
      `Max open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     `,
      'Max locked memory         8388608              8388608              bytes     ',
    ].join('\n'),
  );
  return file;
}

describe("the gateway's bound on all its connections", () => {
  it('leaves the gateway its reserve of descriptors below the soft open-file limit', () => {
    expect(totalConnectionBound(limitsFile('20000', '1048576'))).toBe(20000 - RESERVED_DESCRIPTORS);
  });

  it('keeps half of a small limit for clients rather than none', () => {
    expect(totalConnectionBound(limitsFile('1024', '4096'))).toBe(512);
  });

  it('sets no bound where there is no limit, or no /proc to read it from', () => {
    expect(totalConnectionBound(limitsFile('unlimited', 'unlimited'))).toBeNull();
    expect(totalConnectionBound(path.join(os.tmpdir(), 'ridedb-no-such-dir', 'limits'))).toBeNull();
  });

  it("reads the kernel's own file: this process's limit (the suite runs on Linux, where it is set)", () => {
    expect(totalConnectionBound()).toEqual(expect.any(Number));
  });
});
