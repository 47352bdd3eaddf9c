# One image for every service; SERVICE picks the app (contract-intake, premium-pricing,
# margin-monitor, default-settlement, or backstop for all four in one process).
FROM node:20-bookworm-slim AS base
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts=false
COPY tsconfig.base.json tsconfig.json ./
COPY tools/register.js tools/register.js
COPY libs libs
COPY apps apps
ENV NODE_ENV=production PORT=3000 SERVICE=backstop
EXPOSE 3000
USER node
CMD ["sh", "-c", "exec node -r ./tools/register.js apps/${SERVICE}/src/main.ts"]
