# syntax=docker/dockerfile:1
# The cityledger node image (deploy/README.md). The build stage builds and packs the workspace packages
# as they are published; the image installs those tarballs, so it holds the built JavaScript and the
# production dependencies, not the repository.
#   docker build -t cityledger .
#   docker run -v cityledger-home:/home/cityledger cityledger init --home /home/cityledger
#   docker run -v cityledger-home:/home/cityledger -p 26656:26656 cityledger
# test/deploy/deploy.test.ts reads this file: keep ENTRYPOINT, CMD and HEALTHCHECK's CMD as JSON arrays.

FROM node:24-bookworm-slim AS build
WORKDIR /src
# pnpm 10 through npx (corepack is not needed).
ENV npm_config_yes=true
# The manifests first: the install layer is rebuilt only when they or the lockfile change.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY patches ./patches
COPY packages/core/package.json packages/core/
COPY packages/consensus/package.json packages/consensus/
COPY packages/apps/package.json packages/apps/
COPY packages/node/package.json packages/node/
COPY bench/package.json bench/
COPY test/package.json test/
RUN npx -y pnpm@10 install --frozen-lockfile
COPY . .
# Fixed tarball names for deploy/image/package.json (pnpm names them by version).
RUN npx -y pnpm@10 run build \
 && mkdir /packs \
 && for p in core consensus apps node; do \
      (cd packages/$p && npx -y pnpm@10 pack --pack-destination /packs) \
      && mv /packs/cityledger-$p-*.tgz /packs/$p.tgz || exit 1; \
    done

FROM node:24-bookworm-slim
ENV NODE_ENV=production npm_config_yes=true
# A dedicated user; its home is the node home (key.json, config.json, genesis.json, data/).
RUN groupadd --system --gid 10001 cityledger \
 && useradd --system --uid 10001 --gid cityledger --home-dir /home/cityledger --shell /usr/sbin/nologin cityledger \
 && mkdir -p /home/cityledger \
 && chown cityledger:cityledger /home/cityledger \
 && chmod 700 /home/cityledger
WORKDIR /opt/cityledger
COPY deploy/image/package.json ./
COPY --from=build /packs /packs
# The packed packages and their dependencies from the registry; pnpm's store and npx's cache go in
# the same layer.
RUN npx -y pnpm@10 install --prod --store-dir /tmp/pnpm-store \
 && rm -rf /tmp/pnpm-store /root/.npm /root/.cache
USER cityledger
VOLUME /home/cityledger
# p2p, RPC (and /metrics); the ports `init` writes. RPC listens where config.json says (rpc.host).
EXPOSE 26656 26657
# 200 from GET /v1/health, through the RPC port; node's fetch, the slim image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:26657/v1/health',{signal:AbortSignal.timeout(4000)}).then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1 and gets docker stop's SIGTERM itself (no shell, no pnpm shim in between);
# `start` handles it, shuts down and exits 0 (within 5 s, under docker stop's default 10 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/opt/cityledger/node_modules/@cityledger/node/dist/cli/main.js"]
CMD ["start", "--home", "/home/cityledger"]
