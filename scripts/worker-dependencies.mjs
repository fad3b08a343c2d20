// Keeps in <app>/package.json only the dependencies the worker loads, so that a following
// `npm prune --omit=dev` leaves the worker image with them alone (~19 MB of node_modules
// instead of ~150: the gateway's Apollo, GraphiQL, dockerode... never run in a worker).
// The list is read off the built code, not typed here: every package `require`d (or
// `import()`ed) by a module reachable from dist/worker/main.js, plus pino transports named
// as `target: '<package>'` (pino loads those by name, on a terminal).
//   node scripts/worker-dependencies.mjs <app directory holding package.json and dist/>
import console from 'node:console';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import process from 'node:process';

const app = path.resolve(process.argv[2] ?? '.');
const entry = path.join(app, 'dist/worker/main.js');
if (!fs.existsSync(entry)) {
  console.error(`[worker-dependencies] ERROR: ${entry} is missing; build first (npm run build)`);
  process.exit(1);
}

const packageOf = (specifier) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');
const visited = new Set();
const packages = new Set();
function visit(file) {
  if (visited.has(file)) return;
  visited.add(file);
  const source = fs.readFileSync(file, 'utf8');
  for (const [, specifier] of source.matchAll(/\b(?:require|import)\("([^"]+)"\)/g)) {
    if (specifier.startsWith('node:')) continue;
    if (!specifier.startsWith('.')) {
      packages.add(packageOf(specifier));
      continue;
    }
    const base = path.resolve(path.dirname(file), specifier);
    const found = [`${base}.js`, path.join(base, 'index.js'), base].find((f) => fs.existsSync(f) && fs.statSync(f).isFile());
    if (!found) throw new Error(`${file}: cannot resolve ${specifier}`);
    visit(found);
  }
  for (const [, target] of source.matchAll(/target: ['"]([^'"./][^'"]*)['"]/g)) packages.add(packageOf(target));
}
visit(entry);

const manifestPath = path.join(app, 'package.json');
const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
const dependencies = manifest.dependencies ?? {};
const builtin = new Set(builtinModules);
const missing = [...packages].filter((p) => !dependencies[p] && !builtin.has(p));
if (missing.length) {
  console.error(`[worker-dependencies] ERROR: the worker loads ${missing.join(', ')}, not in package.json's dependencies`);
  process.exit(1);
}
manifest.dependencies = Object.fromEntries(Object.entries(dependencies).filter(([name]) => packages.has(name)));
delete manifest.devDependencies;
fs.writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`[worker-dependencies] the worker loads ${Object.keys(manifest.dependencies).join(', ')}`);
