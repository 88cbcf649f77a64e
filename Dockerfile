# mailroute container image: the service (SMTP, HTTP) as an unprivileged user.
#   docker build -t mailroute .
#   docker build --build-arg BASE_IMAGE=node:22-bookworm-slim -t mailroute .
# The runtime is the Node.js 24 that `npm ci` installs (the `node` npm package, DESIGN §5), so
# the base image needs only a Node.js and npm able to run npm itself: any node:*-slim image, or
# a Debian image with the nodejs and npm packages.
ARG BASE_IMAGE=node:24-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /opt/mailroute
COPY package.json package-lock.json .npmrc ./
COPY scripts ./scripts
# npm must run on a Node.js that meets every package's engines, or it silently skips optional
# native packages (vite's rolldown binding wants >= 20.19; Debian bookworm's nodejs is 18, and
# the build then fails with "Cannot find module '@rolldown/binding-linux-x64-gnu'"). So fetch
# the pinned Node.js 24 first (the `node` package's install script) and run npm on it.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild node \
 && mkdir -p /opt/build-node && cp node_modules/node/bin/node /opt/build-node/node
ENV PATH=/opt/build-node:$PATH
COPY web ./web
# every dependency: npm's `prepare` builds the dashboard (web/dist) with vite, a devDependency
# (so `npm ci --omit=dev` alone fails with "vite: not found")
RUN npm ci --no-audit --no-fund
# then only what runs: production dependencies (the pinned runtime, node_modules/node, is one)
# and the built dashboard
RUN npm prune --omit=dev --no-audit --no-fund && rm -rf web/src web/test
COPY bin ./bin
COPY packaging/healthcheck.js ./packaging/healthcheck.js
COPY src ./src
# the service's modules, type-stripped ahead (bin/stripped-typescript.js says why)
RUN node --disable-warning=ExperimentalWarning scripts/strip-types.js

FROM ${BASE_IMAGE}
# a fixed uid/gid so a bind-mounted data volume can be chowned ahead of time
RUN groupadd --system --gid 10025 mailroute \
 && useradd --system --uid 10025 --gid mailroute --home-dir /var/lib/mailroute --shell /usr/sbin/nologin mailroute \
 && mkdir -p /var/lib/mailroute && chown mailroute:mailroute /var/lib/mailroute && chmod 0700 /var/lib/mailroute
WORKDIR /opt/mailroute
COPY --from=build /opt/mailroute /opt/mailroute
USER mailroute
ENV MAILROUTE_DATA_DIR=/var/lib/mailroute \
    MAILROUTE_SMTP_HOST=:: \
    MAILROUTE_SMTP_PORT=2525 \
    MAILROUTE_HTTP_HOST=:: \
    MAILROUTE_HTTP_PORT=8787
VOLUME ["/var/lib/mailroute"]
# publish 25 -> 2525 and 80 -> 8787 (and 443 -> --https-port) with the runtime's port mapping:
# inside, nothing needs a privileged port
EXPOSE 2525 8787 8443
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "packaging/healthcheck.js"]
ENTRYPOINT ["node", "bin/mailroute.js"]
CMD ["start"]
