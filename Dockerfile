# synchub hub image: the compiled hub (dist/, from `npm run build`) on the production
# node_modules. TypeScript and tsx stay in the build stage.
#   docker build -t synchub:0.1.0 .
#   docker run -p 8080:8080 -e SYNCHUB_REGISTRATION=open synchub:0.1.0    # embedded PGlite in /data
# In Kubernetes (k8s/) it runs with DATABASE_URL and REDIS_URL and a read-only root filesystem.

# --- build: every dependency, then `npm run build` (protocol/ and src/ to dist/, migrations beside).
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY protocol ./protocol
COPY src ./src
COPY migrations ./migrations
RUN npm run build

# --- deps: production dependencies only. The full Debian image has python3, make and g++ for
# any optional native addon that compiles at install time; same Debian release and glibc as the
# runtime stage, so what it builds runs there. `prepare` (the build) is the build stage's job.
FROM node:20-bookworm AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime: slim glibc image (uWebSockets.js ships glibc binaries; Alpine's musl cannot load
# them). The files stay owned by root and read-only to the hub's user.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# A fixed, numeric uid/gid: k8s/deployment.yaml runs as the same (runAsUser: 10001).
# /data is where the embedded PGlite default keeps its files when no DATABASE_URL is given.
RUN groupadd --system --gid 10001 synchub \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin synchub \
 && mkdir /data && chown 10001:10001 /data
ENV SYNCHUB_DATA_DIR=/data
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["node", "bin/synchub.js"]
CMD ["serve"]
