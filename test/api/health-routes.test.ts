import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import Fastify from "fastify";
import pg from "pg";
import { healthRoutes } from "../../src/api/health-routes.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

interface Answer {
  status: number;
  body: { success: boolean; result: { status: string; failing: string[]; checks?: Record<string, Record<string, unknown>> } };
}

function get(port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Answer["body"] }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("health and readiness of the running service", () => {
  forEachDatabase((target) => {
    let h: Harness;

    it("reports SMTP listening, the store answering and the worker runtime idle: 200 on /healthz and /readyz", async () => {
      const database = target.options().databaseUrl;
      h = await startHarness({ destinations: [], settings: database === undefined ? {} : { database } });
      try {
        const health = await get(h.mailroute.http.port, "/healthz");
        assert.equal(health.status, 200, JSON.stringify(health.body));
        assert.equal(health.body.result.status, "ok");
        assert.deepEqual(health.body.result.failing, []);
        const checks = health.body.result.checks!;
        assert.deepEqual([checks["smtp"]!["status"], checks["smtp"]!["listening"]], ["ok", true]);
        assert.equal(checks["store"]!["status"], "ok");
        assert.equal(typeof checks["store"]!["latency_ms"], "number");
        assert.deepEqual([checks["workers"]!["status"], checks["workers"]!["state"], checks["workers"]!["runtimes"]], ["ok", "idle", []]);
        const ready = await get(h.mailroute.http.port, "/readyz");
        assert.deepEqual([ready.status, ready.body.result.status], [200, "ready"]);
      } finally {
        await h.stop();
      }
    });

    it("answers 503 naming the store when a store query cannot complete", async () => {
      const database = target.options().databaseUrl;
      h = await startHarness({ destinations: [], settings: database === undefined ? {} : { database } });
      const blocker = database === undefined ? null : new pg.Client({ connectionString: database });
      try {
        if (blocker === null) {
          // SQLite: the store's connection is gone, every query fails at once
          await h.mailroute.store.close();
        } else {
          // PostgreSQL: a lock another session holds makes the query hang; the check must not
          await blocker.connect();
          await blocker.query("begin");
          await blocker.query("lock table config_version in access exclusive mode");
        }
        const health = await get(h.mailroute.http.port, "/healthz");
        assert.equal(health.status, 503);
        assert.equal(health.body.success, false);
        assert.deepEqual(health.body.result.failing, ["store"]);
        assert.equal(health.body.result.checks!["store"]!["status"], "failing");
        if (blocker !== null) assert.equal(health.body.result.checks!["store"]!["error"], "ETIMEDOUT");
        assert.equal(health.body.result.checks!["smtp"]!["status"], "ok");
        const ready = await get(h.mailroute.http.port, "/readyz");
        assert.deepEqual([ready.status, ready.body.result.status, ready.body.result.failing], [503, "not_ready", ["store"]]);
        assert.doesNotMatch(JSON.stringify(health.body), /postgres:\/\/|at .*\.ts:\d+/, "no URL, no stack trace");
      } finally {
        if (blocker !== null) await blocker.end();
        await h.stop();
      }
    });
  });
});

describe("health routes", () => {
  const app = Fastify();
  let smtpListening = true;
  let accepting = true;
  before(async () => {
    await app.register(healthRoutes, {
      smtpListening: () => smtpListening,
      pingStore: async () => 1,
      workerRuntimes: () => [{ account: "default", pid: 4242, inFlight: 2 }],
      accepting: () => accepting,
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
  });
  after(() => app.close());
  const port = () => (app.server.address() as { port: number }).port;

  it("fails both endpoints when the SMTP listener is closed, and reports running worker runtimes", async () => {
    smtpListening = false;
    try {
      const health = await get(port(), "/healthz");
      assert.deepEqual([health.status, health.body.result.failing], [503, ["smtp"]]);
      assert.deepEqual(health.body.result.checks!["workers"], { status: "ok", state: "running", runtimes: [{ account: "default", pid: 4242, in_flight: 2 }] });
      assert.equal((await get(port(), "/readyz")).status, 503);
    } finally {
      smtpListening = true;
    }
  });

  it("is not ready while the service is stopping, though still healthy", async () => {
    accepting = false;
    try {
      const ready = await get(port(), "/readyz");
      assert.deepEqual([ready.status, ready.body.result.failing], [503, ["accepting"]]);
      assert.equal((await get(port(), "/healthz")).status, 200);
    } finally {
      accepting = true;
    }
    assert.equal((await get(port(), "/readyz")).status, 200);
  });
});
