#!/usr/bin/env bash
# Builds the worker image on a machine without an image registry: a `FROM scratch` image
# holding this host's node binary, the shared libraries it links, and the built app with
# its production dependencies. (With a registry, compose/worker.Dockerfile is the usual
# way.) Skips the build when the image already holds exactly this build.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[worker-image] %s\n' "$*"; }

IMAGE="${WORKER_IMAGE:-ridedb-worker:latest}"
NODE_BIN=$(readlink -f "$(command -v node)")
[ -f dist/worker/main.js ] || { echo "[worker-image] ERROR: dist/ is missing; run npm run build first" >&2; exit 1; }

HASH=$( { sha256sum "$NODE_BIN" package-lock.json scripts/build-worker-image.sh; find dist -type f -name '*.js' -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{ index .Config.Labels "ridedb.build" }}' "$IMAGE" 2>/dev/null || true)" = "$HASH" ]; then
  say "$IMAGE is current ($HASH)"
  exit 0
fi

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
ROOT="$CTX/rootfs"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/app" "$ROOT/tmp"
cp "$NODE_BIN" "$ROOT/usr/local/bin/node"
for lib in $(ldd "$NODE_BIN" | awk '/=> \// { print $3 } /^\s*\/[^ ]+ \(/ { print $1 }'); do
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
done
say "copying the app and its production dependencies"
cp -r dist package.json package-lock.json "$ROOT/app/"
cp -a node_modules "$ROOT/app/"
(cd "$ROOT/app" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)

cat > "$CTX/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
WORKDIR /app
ENV NODE_ENV=production
LABEL ridedb.build="$HASH"
# Same V8 flags and allocator setting as the process runtime (gateway/nodeFlags.ts).
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["/usr/local/bin/node", "--max-semi-space-size=2", "/app/dist/worker/main.js"]
DOCKERFILE
say "building $IMAGE ($HASH)"
docker build -q -t "$IMAGE" "$CTX" >"$CTX/build.log" 2>&1 || { cat "$CTX/build.log" >&2; exit 1; }
say "built $IMAGE"
