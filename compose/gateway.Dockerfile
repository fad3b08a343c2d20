# The gateway image. Build from the repository root:
#   docker build -f compose/gateway.Dockerfile -t ridedb-gateway:latest .
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
RUN npx tsc -p . && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
EXPOSE 4000
# Flags and allocator setting: gateway/nodeFlags.ts.
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["node", "--max-old-space-size=512", "--max-semi-space-size=16", "dist/gateway/main.js"]
