/**
 * The HTTP front (src/api/http-front.ts) on a real listener on loopback: health checks are
 * answered without building the app, with the app's own answers; the first other request builds
 * it once, however many arrive together; a failed build answers the catalogue's INTERNAL envelope
 * and the next request builds again; stopping closes what was built and refuses what comes later.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, it } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { createLogger } from "../../src/analytics/structured-log.ts";
import { createHttpFront, listenHttp, type HttpFront } from "../../src/api/http-front.ts";
import { healthRoutes, type HealthChecks } from "../../src/api/health-routes.ts";
import { PassThrough } from "node:stream";

const checks: HealthChecks = {
  smtpListening: () => true,
  pingStore: async () => 1,
  workerRuntime: () => ({ state: "ok", accounts: [] }),
  accepting: () => true,
};

function capturedLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
  return { logger: createLogger({ stream, level: "info" }), lines: () => text.split("\n").filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** An app with the health routes and one route of its own; `closed` counts its onClose hooks. */
function appMaker(): { build: () => Promise<FastifyInstance>; builds: () => number; closed: () => number } {
  let builds = 0;
  let closed = 0;
  return {
    builds: () => builds,
    closed: () => closed,
    build: async () => {
      builds++;
      const app = Fastify({ logger: false });
      await app.register(healthRoutes, checks);
      app.get("/client/v4/ping", async () => ({ success: true, result: "pong" }));
      app.addHook("onClose", async () => {
        closed++;
      });
      return app;
    },
  };
}

describe("HTTP front", () => {
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const stop of stops) await stop();
  });

  async function serve(front: HttpFront): Promise<string> {
    const listener = await listenHttp(front.handle, 0, "127.0.0.1");
    stops.push(() => listener.close());
    return `http://127.0.0.1:${listener.address.port}`;
  }

  it("answers /healthz and /readyz as the app does, without building it", async () => {
    const maker = appMaker();
    const { logger } = capturedLogger();
    const front = createHttpFront({ build: maker.build, health: checks, logger });
    const base = await serve(front);
    const reference = await maker.build();
    for (const path of ["/healthz", "/readyz"]) {
      const answer = await fetch(`${base}${path}?probe=1`);
      const expected = await reference.inject({ method: "GET", url: path });
      assert.equal(answer.status, expected.statusCode);
      assert.equal(answer.headers.get("cache-control"), "no-store");
      assert.match(answer.headers.get("content-type") ?? "", /^application\/json/);
      const body = (await answer.json()) as { result: { checks?: { store?: { latency_ms?: number } } } };
      const wanted = expected.json() as typeof body;
      // the store check's latency is measured each time
      if (body.result.checks?.store) body.result.checks.store.latency_ms = wanted.result.checks!.store!.latency_ms!;
      assert.deepEqual(body, wanted);
    }
    const head = await fetch(`${base}/healthz`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    await reference.close();
    assert.equal(maker.builds(), 1, "only the reference app was built");
    assert.equal(front.built, false);
  });

  it("builds the app once on the first other request, however many arrive together, and routes through it", async () => {
    const maker = appMaker();
    const { logger } = capturedLogger();
    const front = createHttpFront({ build: maker.build, health: checks, logger });
    const base = await serve(front);
    const answers = await Promise.all(Array.from({ length: 6 }, () => fetch(`${base}/client/v4/ping`)));
    for (const answer of answers) assert.deepEqual(await answer.json(), { success: true, result: "pong" });
    assert.equal(maker.builds(), 1);
    assert.equal(front.built, true);
    const missing = await fetch(`${base}/no/such/path`);
    assert.equal(missing.status, 404);
    await front.close();
    assert.equal(maker.closed(), 1, "closing the front closed the app it built");
  });

  it("answers a failed build with the INTERNAL envelope, logs it, and builds again on the next request", async () => {
    const maker = appMaker();
    const { logger, lines } = capturedLogger();
    let failures = 1;
    const front = createHttpFront({
      build: async () => {
        if (failures-- > 0) throw new Error("cannot load the app: /secret/path/module.ts");
        return maker.build();
      },
      health: checks,
      logger,
    });
    const base = await serve(front);
    const failed = await fetch(`${base}/client/v4/ping`);
    assert.equal(failed.status, 500);
    const envelope = (await failed.json()) as { success: boolean; errors: { code: number; message: string }[] };
    assert.equal(envelope.success, false);
    assert.equal(envelope.errors[0]!.code, 1000);
    assert.doesNotMatch(envelope.errors[0]!.message, /secret/, "the remote party learns nothing of the cause");
    const logged = lines().find((line) => line.event === "http_app_failed");
    assert.ok(logged, "the failure is logged");
    assert.match(envelope.errors[0]!.message, new RegExp(String(logged.incident)));
    const retried = await fetch(`${base}/client/v4/ping`);
    assert.deepEqual(await retried.json(), { success: true, result: "pong" });
    await front.close();
  });

  it("once stopping, builds nothing and refuses with the STOPPING envelope; health still answers", async () => {
    const maker = appMaker();
    const { logger } = capturedLogger();
    const front = createHttpFront({ build: maker.build, health: checks, logger });
    const base = await serve(front);
    await front.close();
    const refused = await fetch(`${base}/client/v4/ping`);
    assert.equal(refused.status, 503);
    const envelope = (await refused.json()) as { errors: { code: number }[] };
    assert.equal(envelope.errors[0]!.code, 1009);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    assert.equal(maker.builds(), 0);
  });

  it("closes an app whose build was in progress when it stopped, and refuses the request that waited for it", async () => {
    const maker = appMaker();
    const { logger } = capturedLogger();
    let release: () => void = () => undefined;
    const front = createHttpFront({
      build: async () => {
        await new Promise<void>((resolve) => (release = resolve));
        return maker.build();
      },
      health: checks,
      logger,
    });
    const base = await serve(front);
    const waiting = fetch(`${base}/client/v4/ping`);
    await sleep(50);
    const closing = front.close();
    release();
    await closing;
    assert.equal((await waiting).status, 503);
    assert.equal(maker.builds(), 1);
    assert.equal(maker.closed(), 1, "the app built while stopping was closed");
    assert.equal(front.built, false);
  });
});
