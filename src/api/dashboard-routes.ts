/**
 * Serves the dashboard (the React app built by `npm install` into web/dist) at `/` of the HTTP
 * port: the built files with @fastify/static, index.html for the app's own paths (/zones/…),
 * so a reload or a shared link opens the same view.
 *
 * Promises:
 * - every dashboard response carries a strict Content-Security-Policy (scripts, styles and
 *   API calls only from this origin, no inline code, no framing), nosniff and no-referrer;
 * - the dashboard is only static files: it reads and changes things solely through the public
 *   REST API with the user's token, so it adds no power a script lacks (and no cookies, so no
 *   CSRF surface);
 * - when the build is missing, `/` says how to build it instead of a bare 404;
 * - it claims no path the API, health check or MTA-STS policy use: only the built files, `/`
 *   and `/zones/…`.
 */
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const DEFAULT_DASHBOARD_ROOT = fileURLToPath(new URL("../../web/dist/", import.meta.url));

const MISSING_BUILD = `<!doctype html><html lang="en"><meta charset="utf-8"><title>mailroute</title>
<h1>The dashboard is not built</h1>
<p>mailroute builds its dashboard during <code>npm install</code>. Build it now with <code>npm run build:web</code> (in the mailroute folder), then reload this page.</p>
<p>The REST API is available at <code>/client/v4</code> either way.</p></html>`;

export interface DashboardOptions {
  /** The built dashboard (web/dist); a test may point elsewhere. */
  root?: string;
}

export async function dashboardRoutes(app: FastifyInstance, options: DashboardOptions = {}): Promise<void> {
  const root = options.root ?? DEFAULT_DASHBOARD_ROOT;
  app.addHook("onSend", async (_request, reply, payload) => {
    reply.header("content-security-policy", DASHBOARD_CSP);
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
    reply.header("x-frame-options", "DENY");
    return payload;
  });

  if (!existsSync(`${root}/index.html`)) {
    app.get("/", async (_request, reply) => reply.code(503).type("text/html; charset=utf-8").header("cache-control", "no-store").send(MISSING_BUILD));
    return;
  }

  // wildcard: false registers one route per built file, so unknown paths keep the server's
  // JSON 404 (and /client/v4 its own) instead of being swallowed by a catch-all.
  await app.register(fastifyStatic, {
    root,
    wildcard: false,
    index: false,
    setHeaders: (reply, path) => void reply.header("cache-control", path.includes("/assets/") ? "public, max-age=31536000, immutable" : "no-cache"),
  });
  const appShell = (reply: FastifyReply) => reply.header("cache-control", "no-cache").sendFile("index.html", root, { maxAge: 0, immutable: false });
  app.get("/", async (_request, reply) => appShell(reply));
  app.get("/zones/*", async (_request, reply) => appShell(reply));
}
