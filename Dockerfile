# syntax=docker/dockerfile:1
# Slipway's image: compiled JavaScript on Node 20 (Debian slim), bubblewrap for the build
# sandbox, production packages only. See compose.yaml for how to run it.
#
#   docker build -t slipway .

# ---- build: all packages, TypeScript → dist/ (npm run build) -------------------------------
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY jobs ./jobs
RUN npm run build

# ---- runtime -----------------------------------------------------------------------------
FROM node:20-slim AS runtime
# bubblewrap: the sandbox builds and running revisions run in (SLIPWAY_SANDBOX). prlimit and
# setpriv come from util-linux. Builds see this image's /usr read-only: add the tools the
# deployed apps' build commands need (git, psql, python3, make, ...) in an image of your own
# FROM this one.
RUN apt-get update \
  && apt-get install -y --no-install-recommends bubblewrap ca-certificates util-linux \
  && rm -rf /var/lib/apt/lists/* \
  && command -v bwrap prlimit setpriv
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The GitHub App manifest the setup page registers (setup mode, without credentials).
COPY app.yml ./

# Inside a container Slipway must listen on all interfaces; data lives on a volume.
ENV HOST=0.0.0.0 \
    PORT=3000 \
    SLIPWAY_ROUTER_HOST=0.0.0.0 \
    SLIPWAY_ROUTER_PORT=8080 \
    SLIPWAY_DATA_DIR=/var/lib/slipway
VOLUME /var/lib/slipway
EXPOSE 3000 8080

# Runs as root on purpose: the build sandbox gives every deployment a uid of its own (hashed
# from the deployment, no capabilities, no_new_privs), which needs root to switch to; builds
# never run as root or as Slipway's user. The container needs namespaces for bubblewrap (see
# compose.yaml: cap_add SYS_ADMIN, apparmor and systempaths unconfined).
USER root

# The compiled entry point, with plain node: no TypeScript loader, no build at start. Slipway
# handles SIGTERM itself (builds get SLIPWAY_SHUTDOWN_GRACE_SECONDS, 30 s, to finish): give
# `docker stop` more time than that (compose.yaml: stop_grace_period), and run it under an init
# (`docker run --init`, compose's `init: true`) that reaps processes orphaned by builds.
CMD ["node", "--enable-source-maps", "dist/main.js"]
