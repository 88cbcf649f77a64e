import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { mtaStsPolicy } from "../../src/core/zone-dns-records.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";

function get(h: Harness, path: string, host: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: h.mailroute.http.port, path, headers: { host } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"] ?? ""), body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("HTTP service", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ destinations: [] });
    await h.config.zones.create("example.com");
    await h.config.zones.create("paused.example");
    await h.config.zones.update("paused.example", { enabled: false });
    await h.reload();
  });
  after(async () => h?.stop());

  it("serves the MTA-STS policy for mta-sts.<domain> of a routed domain, naming our MX, in testing mode while the certificate is self-signed", async () => {
    const response = await get(h, "/.well-known/mta-sts.txt", "mta-sts.EXAMPLE.com:443");
    assert.equal(response.status, 200);
    assert.match(response.type, /^text\/plain/);
    assert.equal(response.body, mtaStsPolicy("mx.mailroute.test", "testing").text);
    assert.match(response.body, /^version: STSv1\nmode: testing\nmx: mx\.mailroute\.test\nmax_age: \d+\n$/);
  });

  it("serves no policy for a domain it does not route, a disabled one, or another host name", async () => {
    for (const host of ["mta-sts.elsewhere.test", "mta-sts.paused.example", "example.com", "mta-sts.sub.example.com"]) {
      const response = await get(h, "/.well-known/mta-sts.txt", host);
      assert.equal(response.status, 404, host);
      assert.equal((JSON.parse(response.body) as { success: boolean }).success, false);
    }
  });

  it("answers a health check that looked at SMTP, the store and the worker runtime", async () => {
    const response = await get(h, "/healthz", "localhost");
    assert.equal(response.status, 200);
    const body = JSON.parse(response.body) as { success: boolean; result: { status: string; checks: Record<string, { status: string }> } };
    assert.deepEqual([body.success, body.result.status, Object.keys(body.result.checks).sort()], [true, "ok", ["smtp", "store", "workers"]]);
  });
});
