import fs from 'node:fs';
import path from 'node:path';

// `npm ci` applies patches/ to the dependencies in its postinstall (patch-package); an
// image that installs without them runs the unpatched ZooKeeper client, silently.
const compose = path.join(__dirname, '..', '..', 'compose');
const dockerfiles = fs.readdirSync(compose).filter((f) => f.endsWith('.Dockerfile'));

describe('the Dockerfiles', () => {
  it.each(dockerfiles)('%s copies patches/ before it runs npm ci', (file) => {
    const lines = fs.readFileSync(path.join(compose, file), 'utf8').split('\n');
    const install = lines.findIndex((l) => /^RUN .*npm ci\b/.test(l));
    expect(install).toBeGreaterThan(-1);
    expect(lines.slice(0, install).some((l) => /^COPY patches\b/.test(l))).toBe(true);
  });
});
