import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import Fastify from "fastify";
import pg from "pg";
import { healthRoutes, type WorkerRuntimeHealth, type WorkerRuntimeState } from "../../src/api/health-routes.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

interface Answer {
  status: number;
  body: { success: boolean; result: { status: string; failing: string[]; degraded?: string[]; workers?: string; checks?: Record<string, Record<string, unknown>> } };
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
        assert.deepEqual([checks["workers"]!["status"], checks["workers"]!["state"], checks["workers"]!["running"], checks["workers"]!["runtimes"]], ["ok", "ok", false, []]);
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
  const running: WorkerRuntimeState = { account: "default", pid: 4242, inFlight: 2, state: "ok" };
  let runtime: WorkerRuntimeHealth = { state: "ok", accounts: [running] };
  before(async () => {
    await app.register(healthRoutes, {
      smtpListening: () => smtpListening,
      pingStore: async () => 1,
      workerRuntime: () => runtime,
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
      assert.deepEqual(health.body.result.checks!["workers"], { status: "ok", state: "ok", running: true, runtimes: [{ account: "default", pid: 4242, in_flight: 2, state: "ok" }] });
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

  it("reports a degraded worker runtime with its reason but stays healthy and ready", async () => {
    const since = Date.UTC(2026, 11, 6, 7, 0, 0);
    runtime = { state: "degraded", accounts: [running, { account: "acme", pid: null, inFlight: 0, state: "degraded", reason: "crashed", detail: "exited", since }] };
    try {
      const health = await get(port(), "/healthz");
      assert.deepEqual([health.status, health.body.result.status, health.body.result.failing, health.body.result.degraded], [200, "degraded", [], ["workers"]]);
      const workers = health.body.result.checks!["workers"]!;
      assert.deepEqual([workers["status"], workers["state"]], ["degraded", "degraded"]);
      assert.deepEqual((workers["runtimes"] as unknown[])[1], { account: "acme", pid: null, in_flight: 0, state: "degraded", reason: "crashed", detail: "exited", since: "2026-12-06T07:00:00.000Z" });
      const ready = await get(port(), "/readyz");
      assert.deepEqual([ready.status, ready.body.result.status, ready.body.result.degraded, ready.body.result.workers], [200, "ready", ["workers"], "degraded"]);
    } finally {
      runtime = { state: "ok", accounts: [running] };
    }
  });

  it("fails both endpoints, naming the workers, when an account's runtime cannot start", async () => {
    runtime = { state: "failed", accounts: [{ account: "acme", pid: null, inFlight: 0, state: "failed", reason: "start-failed", detail: "x", since: 1 }] };
    try {
      const health = await get(port(), "/healthz");
      assert.deepEqual([health.status, health.body.result.status, health.body.result.failing], [503, "failing", ["workers"]]);
      const ready = await get(port(), "/readyz");
      assert.deepEqual([ready.status, ready.body.result.failing, ready.body.result.workers], [503, ["workers"], "failed"]);
    } finally {
      runtime = { state: "ok", accounts: [running] };
    }
  });
});
