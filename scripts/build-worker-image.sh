#!/usr/bin/env bash
# Builds the worker image on a machine without an image registry: a `FROM scratch` image
# holding this host's node binary, the shared libraries it links, and the built app with
# its production dependencies, plus Debian's PostgreSQL server (initdb, postgres, their
# modules, share files and libraries, /bin/sh for initdb, a `postgres` user) for
# WORKER_STORAGE=dedicated, where each worker container runs its own instance. (With a
# registry, compose/worker.Dockerfile is the usual way.) Skips the build when the image
# already holds exactly this build.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[worker-image] %s\n' "$*"; }

IMAGE="${WORKER_IMAGE:-ridedb-worker:latest}"
NODE_BIN=$(readlink -f "$(command -v node)")
[ -f dist/worker/main.js ] || { echo "[worker-image] ERROR: dist/ is missing; run npm run build first" >&2; exit 1; }
# The newest Debian PostgreSQL on this host (worker/postgresInstall.ts looks in the same place).
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] || {
  echo "[worker-image] ERROR: PostgreSQL's server binaries are missing (/usr/lib/postgresql/<major>/bin): apt-get install postgresql" >&2; exit 1; }
PG_MAJOR=$(basename "$(dirname "$PG_BIN")")
PG_LIB=/usr/lib/postgresql/$PG_MAJOR/lib
PG_SHARE=/usr/share/postgresql/$PG_MAJOR
id postgres >/dev/null 2>&1 || { echo "[worker-image] ERROR: there is no postgres user to copy into the image (apt-get install postgresql creates it)" >&2; exit 1; }

HASH=$( { sha256sum "$NODE_BIN" "$PG_BIN/postgres" "$PG_BIN/initdb" package-lock.json patches/* scripts/build-worker-image.sh scripts/worker-dependencies.mjs; find dist -type f -name '*.js' -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{ index .Config.Labels "ridedb.build" }}' "$IMAGE" 2>/dev/null || true)" = "$HASH" ]; then
  say "$IMAGE is current ($HASH)"
  exit 0
fi

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
ROOT="$CTX/rootfs"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/app" "$ROOT/tmp"
cp "$NODE_BIN" "$ROOT/usr/local/bin/node"
# PostgreSQL at the paths Debian's build expects (initdb finds postgres beside itself and
# the share files relative to it). Every module but LLVM's JIT (jit=off; it would pull in
# 100 MB of libLLVM). The C locale and UTC need no locale data, only the zoneinfo.
mkdir -p "$ROOT$PG_BIN" "$ROOT$PG_LIB" "$ROOT/usr/share/postgresql" "$ROOT/usr/share" "$ROOT/bin" "$ROOT/etc"
cp "$PG_BIN/postgres" "$PG_BIN/initdb" "$ROOT$PG_BIN/"
find "$PG_LIB" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' -exec cp {} "$ROOT$PG_LIB/" \;
cp -r "$PG_SHARE" "$ROOT/usr/share/postgresql/"
rm -rf "$ROOT$PG_SHARE/man"
cp -r /usr/share/zoneinfo "$ROOT/usr/share/"
# initdb runs the bootstrap backend through popen(), that is /bin/sh.
cp -L /bin/sh "$ROOT/bin/sh"
# Root runs the worker; PostgreSQL refuses root and runs as postgres (same ids as here).
grep -E '^(root|postgres):' /etc/passwd > "$ROOT/etc/passwd"
grep -E '^(root|postgres):' /etc/group > "$ROOT/etc/group"
printf 'passwd: files\ngroup: files\n' > "$ROOT/etc/nsswitch.conf"
# The shared libraries of node and of every PostgreSQL binary and module.
for bin in "$NODE_BIN" /bin/sh "$PG_BIN/postgres" "$PG_BIN/initdb" "$ROOT$PG_LIB"/*.so; do
  ldd "$bin" | awk '/=> \// { print $3 } /^\s*\/[^ ]+ \(/ { print $1 }'
done | sort -u | while read -r lib; do
  [ -e "$ROOT$lib" ] && continue
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
done
say "copying the app and its production dependencies"
cp -r dist package.json package-lock.json "$ROOT/app/"
cp -a node_modules "$ROOT/app/"
# Only what the worker loads (the gateway's dependencies are most of node_modules).
node scripts/worker-dependencies.mjs "$ROOT/app"
(cd "$ROOT/app" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)

cat > "$CTX/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
WORKDIR /app
ENV NODE_ENV=production
LABEL ridedb.build="$HASH"
# Same V8 flags and allocator setting as the process runtime (gateway/nodeFlags.ts).
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["/usr/local/bin/node", "--max-semi-space-size=2", "--max-old-space-size=256", "/app/dist/worker/main.js"]
DOCKERFILE
say "building $IMAGE ($HASH)"
docker build -q -t "$IMAGE" "$CTX" >"$CTX/build.log" 2>&1 || { cat "$CTX/build.log" >&2; exit 1; }
say "built $IMAGE"
