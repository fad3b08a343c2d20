import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../platform';

const ROOT = path.resolve(__dirname, '../..');
const SELF = path.relative(ROOT, __filename);

/** The repository's own files (tracked, and new ones not ignored), text only. */
function repositoryTextFiles(): string[] {
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).split('\n');
  return listed.filter((f) => f && f !== SELF && !/\.(png|svg|csv)$|package-lock\.json$/.test(f) && fs.lstatSync(path.join(ROOT, f), { throwIfNoEntry: false })?.isFile());
}

describe('the documentation', () => {
  it("states in README's configuration table the DBAAS_CLUSTER naming rule that platform/config.ts enforces", () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const row = readme.split('\n').find((l) => l.startsWith('| `DBAAS_CLUSTER`'));
    expect(row).toMatch(/1–40 lower-case letters, digits and `_`, starting with a letter/);
    for (const name of ['a', 'a'.repeat(40), 'east_1']) expect(() => loadConfig({ DBAAS_CLUSTER: name })).not.toThrow();
    for (const name of ['a'.repeat(41), '1east', 'East', 'east-1', '_east']) expect(() => loadConfig({ DBAAS_CLUSTER: name })).toThrow(/DBAAS_CLUSTER/);
  });

  it('refers to no file outside the repository: links resolve inside it, cited sections exist', () => {
    const problems: string[] = [];
    for (const file of repositoryTextFiles()) {
      const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
      const at = (index: number) => `${file}:${text.slice(0, index).split('\n').length}`;
      for (const m of text.matchAll(/\.\.\/shared\b|\bDESIGN\b/g)) problems.push(`${at(m.index)}: ${m[0]}`);
      if (file.endsWith('.md')) {
        for (const m of text.matchAll(/\]\(([^)\s#]+)(#[^)]*)?\)/g)) {
          const target = m[1];
          if (/^[a-z]+:/.test(target)) continue; // http:, https:, mailto:
          const resolved = path.resolve(ROOT, path.dirname(file), target);
          if (!resolved.startsWith(`${ROOT}${path.sep}`) || !fs.existsSync(resolved)) problems.push(`${at(m.index)}: link ${target}`);
        }
      }
      for (const m of text.matchAll(/\b(docs\/[\w.-]+\.md) section (\d+(?:\.\d+)?)/g)) {
        const doc = path.join(ROOT, m[1]);
        const heading = new RegExp(`^#{2,4} ${m[2].replace('.', '\\.')}[. ]`, 'm');
        if (!fs.existsSync(doc) || !heading.test(fs.readFileSync(doc, 'utf8'))) problems.push(`${at(m.index)}: ${m[1]} has no section ${m[2]}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
