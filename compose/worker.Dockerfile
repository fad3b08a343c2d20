# The worker image, for machines that can pull the official Node image.
#   docker build -f compose/worker.Dockerfile -t ridedb-worker:latest .
# Without a registry, scripts/build-worker-image.sh builds the same image from the host's
# own node binary (npm start does that for WORKER_RUNTIME=docker).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# npm ci's postinstall applies these (patch-package) to the installed dependencies.
COPY patches patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY schema schema
COPY platform platform
COPY worker worker
COPY gateway gateway
COPY cli cli
COPY bench bench
COPY test/support test/support
COPY scripts/worker-dependencies.mjs scripts/
# Only what the worker loads stays (the gateway's dependencies are most of node_modules).
RUN npx tsc -p . && node scripts/worker-dependencies.mjs . && npm prune --omit=dev

FROM node:20-bookworm-slim
# Debian's PostgreSQL server, for WORKER_STORAGE=dedicated (the docker runtime's default),
# where each worker container runs its own instance (worker/ownPostgres.ts) - the same
# binaries scripts/build-worker-image.sh copies from the host. Not the official postgres
# image: its VOLUME would give every container an anonymous volume that nothing uses. The
# package would create and start a cluster of its own at install: turned off first.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
# Root: the worker prepares its volume (a fresh one is root's) and runs PostgreSQL as the
# postgres user the package created (PostgreSQL refuses root).
# Workers run with host networking; every address they use comes from the environment.
# Same V8 flags and allocator setting as the process runtime (gateway/nodeFlags.ts).
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["node", "--max-semi-space-size=2", "--max-old-space-size=256", "dist/worker/main.js"]
