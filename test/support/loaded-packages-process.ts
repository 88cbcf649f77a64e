/**
 * Run as a child process by test/cli/optional-subsystems.test.ts: starts mailroute
 * (startMailroute, as `mailroute start` does) on the data directory given as argv[2], with a
 * load hook that records every npm package loaded, then asks GET /readyz and then
 * POST /client/v4/graphql once. Prints one JSON line: the packages loaded by the start, those
 * loaded once the readiness answer came and once the GraphQL answer came, and both answers. A
 * child of its own because a package, once loaded, stays loaded: the test process has loaded
 * everything already.
 */
import { registerHooks } from "node:module";

const loaded = new Set<string>();
registerHooks({
  // load, not resolve: a module whose path is only resolved (require.resolve, as the mailauth
  // stand-ins do to find joi) is not loaded
  load(url, context, nextLoad) {
    // the package a file belongs to: the path part after the last node_modules/ (scoped: two parts)
    const at = url.lastIndexOf("/node_modules/");
    if (at >= 0) {
      const parts = url.slice(at + "/node_modules/".length).split("/");
      loaded.add(parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!);
      // a part of a package that is loaded on its own: nodemailer's MIME composer
      if (url.includes("/nodemailer/lib/mail-composer/")) loaded.add("nodemailer/lib/mail-composer");
    }
    return nextLoad(url, context);
  },
});

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error("usage: loaded-packages-process.ts <data-dir>");
const { silentLogger } = await import("../../src/analytics/structured-log.ts");
const { loadSettings } = await import("../../src/config/settings.ts");
const { startMailroute } = await import("../../src/cli/start-service.ts");
const token = "optional-subsystems-token";
const settings = loadSettings({ "data-dir": dataDir, "smtp-host": "127.0.0.1", "smtp-port": "0", "http-host": "127.0.0.1", "http-port": "0", hostname: "mx.mailroute.test", "admin-token": token }, {});
const mailroute = await startMailroute(settings, { logger: silentLogger, closeTimeoutMs: 500 });
try {
  const atStart = [...loaded].sort();
  const readyz = await fetch(`http://127.0.0.1:${mailroute.http.port}/readyz`);
  const ready = { status: readyz.status, body: await readyz.json() };
  const afterHealth = [...loaded].sort();
  const response = await fetch(`http://127.0.0.1:${mailroute.http.port}/client/v4/graphql`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ query: `{ viewer { zones(filter: { zoneTag: "no-such-zone" }) { zoneTag } } }` }),
  });
  const graphql = { status: response.status, body: await response.json() };
  process.stdout.write(`${JSON.stringify({ atStart, afterHealth, ready, afterGraphql: [...loaded].sort(), graphql })}\n`);
} finally {
  await mailroute.close();
}
