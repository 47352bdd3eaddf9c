# syntax=docker/dockerfile:1
# One image for every service; SERVICE picks the app (contract-intake, premium-pricing,
# margin-monitor, default-settlement, ledger, or backstop for all four in one process).
#
#   docker build --build-context market-data=../shared/data -t backstop:0.1.0 .
#
# The market-data context holds the *-daily.csv price files that default-settlement's historical
# stress scenarios (Cover 2) read; they are copied into the image (BACKSTOP_MARKET_DATA_DIR).
# Node 24 (LTS, supported until April 2028) in both stages: better-sqlite3 is a native module and
# must be compiled for the Node that runs it. The tests and CI run on the machine's Node 20.
ARG NODE_IMAGE=node:24-bookworm-slim

# --- Without --build-context market-data=..., stop with the reason instead of shipping an image
# --- whose stress test silently falls back to built-in crash days.
FROM ${NODE_IMAGE} AS market-data
RUN echo "build with --build-context market-data=../shared/data (the *-daily.csv price files)" >&2 && exit 1

# --- Build: all modules (esbuild, swc), then one bundle per app in dist/apps/<app>/main.js.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY tools/build tools/build
COPY libs libs
COPY apps apps
RUN node tools/build/bundle.js backstop contract-intake premium-pricing margin-monitor default-settlement ledger compliance-cli market-replay backtest

# --- Production modules only, native ones compiled here (the runtime has no compiler).
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /deps
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
 && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"

# --- Runtime: slim Node, no compiler, no npm cache, non-root.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    SERVICE=backstop \
    BACKSTOP_DATA_FILE=/app/data/backstop.db \
    BACKSTOP_MARKET_DATA_DIR=/app/market-data
WORKDIR /app
COPY --from=prod-deps /deps/node_modules ./node_modules
COPY --from=prod-deps /deps/package.json ./package.json
COPY --from=build /src/dist/apps ./dist/apps
COPY --from=market-data *-daily.csv ./market-data/
# The embedded store (SERVICE=backstop) writes /app/data: owned by the node user (uid 1000), the
# only writable path besides /tmp. Code and modules stay root-owned, so the process cannot change them.
RUN mkdir -p /app/data && chown 1000:1000 /app/data
VOLUME ["/app/data"]
# Numeric, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 1000:1000
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# exec replaces the shell: node is PID 1 and gets SIGTERM itself, so it drains and closes cleanly.
CMD ["sh", "-c", "test -f \"dist/apps/$SERVICE/main.js\" || { echo \"SERVICE=$SERVICE: no such app in dist/apps\" >&2; exit 64; }; exec node --enable-source-maps \"dist/apps/$SERVICE/main.js\""]
