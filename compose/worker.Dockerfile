# The worker image, for machines that can pull the official Node image.
#   docker build -f compose/worker.Dockerfile -t ridedb-worker:latest .
# Without a registry, scripts/build-worker-image.sh builds the same image from the host's
# own node binary (npm start does that for WORKER_RUNTIME=docker).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY schema schema
COPY worker worker
COPY gateway gateway
COPY cli cli
COPY bench bench
COPY test/support test/support
RUN npx tsc -p . && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
USER node
# Workers run with host networking; every address they use comes from the environment.
# Same V8 flags and allocator setting as the process runtime (gateway/nodeFlags.ts).
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/worker/main.js"]
