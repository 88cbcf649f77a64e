/**
 * Every API route, asked for another account's things: a token of account B, an expired
 * token of A, a token of A without the permission, no token and a malformed one each get
 * 401/403/404 and none of A's data — and change nothing. Then bad requests: malformed JSON,
 * wrong types, unknown fields, repeated query parameters, oversized bodies, each a 400/413
 * naming the field, and the per-token rate limit.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { apiRoutes } from "../../src/api/client-v4.ts";
import { FixedWindowCounter } from "../../src/api/request-limits.ts";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices, type AccountServices } from "../../src/core/services.ts";
import { lazySecretBox } from "../../src/workers/secret-box.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";

interface Response {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

function call(h: Harness, method: string, path: string, options: { token?: string; body?: string | Buffer; type?: string } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`;
    if (options.body !== undefined) {
      headers["content-type"] = options.type ?? "application/json";
      headers["content-length"] = Buffer.byteLength(options.body);
    }
    const req = request({ host: "127.0.0.1", port: h.mailroute.http.port, method, path, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    // The server may answer (401, 413) and close before the whole body is written.
    req.on("error", (error: NodeJS.ErrnoException) => (error.code === "EPIPE" || error.code === "ECONNRESET" ? undefined : reject(error)));
    req.end(options.body);
  });
}

const ALL_PERMISSIONS = ["Email Routing Rules Write", "Email Routing Addresses Write", "Zone Write", "Account Settings Read", "API Tokens Write"].map((id) => ({ id }));
const SECRETS = ["a-secret.example", "private-a@dest.test", "A's hello rule", "Account A", "a-private-worker", "A's secret value", "A's kv value", "a-private-ns"];

describe("API authorisation across accounts", () => {
  let h: Harness;
  let a: AccountServices;
  const ids: Record<string, string> = {};
  const tokens: Record<string, string> = {};

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"], overrides: { apiLimits: { failureLimit: new FixedWindowCounter({ limit: 100_000, windowMs: 60_000 }) } } });
    const services = createServices(h.configStore, { secretBox: lazySecretBox(h.dataDir) });
    await services.accounts(CLI_OPERATOR).create({ id: "acct-a", name: "Account A" });
    await services.accounts(CLI_OPERATOR).create({ id: "acct-b", name: "Account B" });
    a = services.forAccount({ account: "acct-a", actor: CLI_OPERATOR });
    const b = services.forAccount({ account: "acct-b", actor: CLI_OPERATOR });
    const zone = await a.zones.create("a-secret.example");
    await a.addresses.create("private-a@dest.test", { verified: true });
    const rule = await a.rules.create({ name: "A's hello rule", matchers: [{ type: "literal", field: "to", value: "hello@a-secret.example" }], actions: [{ type: "forward", value: ["private-a@dest.test"] }] });
    await b.zones.create("b.example");
    const resources = (account: string) => ({ [`com.cloudflare.api.account.${account}`]: "*" });
    const full = await a.tokens.create({ name: "a-full", policies: [{ permission_groups: ALL_PERMISSIONS, resources: resources("acct-a") }] });
    tokens["a"] = full.value;
    tokens["b"] = (await b.tokens.create({ name: "b-full", policies: [{ permission_groups: ALL_PERMISSIONS, resources: resources("acct-b") }] })).value;
    tokens["a-expired"] = (await a.tokens.create({ name: "a-old", policies: [{ permission_groups: ALL_PERMISSIONS, resources: resources("acct-a") }], expires_on: "2001-01-01T00:00:00Z" })).value;
    tokens["a-unrelated"] = (await a.tokens.create({ name: "a-workers", policies: [{ permission_groups: [{ id: "Workers Scripts Read" }], resources: resources("acct-a") }] })).value;
    tokens["a-other-zone-only"] = (await a.tokens.create({ name: "a-b-zone", policies: [{ permission_groups: ALL_PERMISSIONS, resources: { "com.cloudflare.api.account.zone.0000000000000000000000000000ffff": "*" } }] })).value;
    // A's Email Worker, its secret and a KV entry: the Workers Scripts and KV routes address them
    await a.workers.deploy({ name: "a-private-worker", bundle: "export default { async email() {} };", compatibilityDate: "2024-09-23", compatibilityFlags: [], vars: { NOTE: "x" }, kv: [{ binding: "MAP", namespace: "a-private-ns" }], sendEmail: [] });
    await a.workers.putSecret("a-private-worker", "A_SECRET", "A's secret value");
    await a.kv.put("a-private-ns", "a-key", new TextEncoder().encode("A's kv value"));
    Object.assign(ids, { account_id: "acct-a", zone_id: zone.id, rule_id: rule.id, address_id: (await a.addresses.get("private-a@dest.test")).id, token_id: full.id });
    Object.assign(ids, { script_name: "a-private-worker", secret_name: "A_SECRET", namespace_id: "a-private-ns", key_name: "a-key" });
    // the API's app is built on the first request that needs it (src/api/http-front.ts), and its
    // routes are known from then on
    assert.equal((await call(h, "GET", "/client/v4/user/tokens/verify", { token: tokens["a"] })).status, 200);
  });
  after(async () => h?.stop());

  // Routes that list "what the caller may see" rather than address one account's resource.
  // Routes that answer each principal about its own things; they must leak nothing of A's.
  // GraphQL is one: it lists only the zones the token may see (asked here for A's zone).
  const SELF_SCOPED = new Set(["GET /client/v4/accounts", "GET /client/v4/memberships", "GET /client/v4/user/tokens/verify", "GET /client/v4/accounts/:account_id/tokens/verify", "GET /client/v4/zones", "POST /client/v4/graphql"]);
  const graphqlBody = () =>
    JSON.stringify({ query: "query ($z: string) { viewer { zones(filter: { zoneTag: $z }) { zoneTag emailRoutingAdaptive(limit: 100) { to from subject } } } }", variables: { z: ids["zone_id"] } });

  function routes(): { method: string; path: string; key: string }[] {
    const all = apiRoutes();
    assert.ok(all.length >= 35, `the API registered its routes (${all.length})`);
    return all.map((key) => {
      const [method, url] = key.split(" ") as [string, string];
      return { method, key, path: url.replace(/:(\w+)/g, (_m, name: string) => ids[name] ?? `unknown-${name}`) };
    });
  }

  for (const who of ["b", "a-expired", "a-unrelated", "a-other-zone-only", "none", "malformed"] as const) {
    it(`refuses every route of account A to ${who === "none" ? "a request without a token" : who === "malformed" ? "a malformed token" : `the token "${who}"`}, leaking nothing`, async () => {
      const token = who === "none" ? undefined : who === "malformed" ? "mrt_not-a-real-token" : tokens[who];
      for (const route of routes()) {
        const body = route.key === "POST /client/v4/zones" ? JSON.stringify({ name: "evil.example", account: { id: "acct-a" } }) : route.key === "POST /client/v4/graphql" ? graphqlBody() : ["POST", "PUT", "PATCH"].includes(route.method) ? "{}" : undefined;
        const response = await call(h, route.method, route.path, { token, body });
        // "a-unrelated" holds Workers Scripts Read on A: reading A's workers is its right (never a secret's value)
        const readsWorkers = who === "a-unrelated" && route.method === "GET" && route.key.includes("/workers/");
        const allowed = who === "none" || who === "malformed" || who === "a-expired" ? [401] : SELF_SCOPED.has(route.key) || readsWorkers ? [200, 403, 404] : [403, 404];
        assert.ok(allowed.includes(response.status), `${who}: ${route.key} answered ${response.status}: ${response.body.slice(0, 200)}`);
        // A's own tokens may see their account's name; nothing else of A without the permission.
        const secrets = readsWorkers ? SECRETS.filter((s) => s !== "a-private-worker" && s !== "a-private-ns") : who.startsWith("a-") && SELF_SCOPED.has(route.key) ? SECRETS.filter((s) => s !== "Account A") : SECRETS;
        // a name the caller itself put in the path (a worker, a namespace) is echoed, not leaked
        for (const secret of secrets.filter((s) => !route.path.includes(s))) assert.ok(!response.body.includes(secret), `${who}: ${route.key} leaked "${secret}"`);
        const envelope = JSON.parse(response.body) as { success: boolean; errors: { code: number; message: string }[] };
        if (response.status >= 400) {
          assert.equal(envelope.success, false);
          assert.ok(envelope.errors[0]!.code > 0 && envelope.errors[0]!.message.length > 0, route.key);
        }
        if (response.status === 401) assert.match(String(response.headers["www-authenticate"]), /^Bearer/);
      }
      // Nothing of A changed.
      assert.equal((await a.rules.get(ids["rule_id"]!)).name, "A's hello rule");
      assert.equal((await a.zones.get(ids["zone_id"]!)).enabled, true);
      assert.notEqual((await a.addresses.get(ids["address_id"]!)).verified, null);
      assert.equal((await a.tokens.get(ids["token_id"]!)).status, "active");
      assert.deepEqual((await a.workers.get("a-private-worker")).bindings.secrets, ["A_SECRET"]);
      assert.equal(new TextDecoder().decode((await a.kv.get("a-private-ns", "a-key"))!.value), "A's kv value");
    });
  }

  it("lets A's own token in, as a control for the refusals above", async () => {
    const response = await call(h, "GET", `/client/v4/zones/${ids["zone_id"]}/email/routing/rules/${ids["rule_id"]}`, { token: tokens["a"] });
    assert.equal(response.status, 200);
    assert.match(response.body, /A's hello rule/);
  });

  it("answers bad requests with 400 naming the field, in Cloudflare's envelope", async () => {
    const rules = `/client/v4/zones/${ids["zone_id"]}/email/routing/rules`;
    const cases: [string, string, string | undefined, number, number, string | undefined][] = [
      ["POST", rules, "{not json", 400, 6007, "/body"],
      ["POST", rules, JSON.stringify({ matchers: [{ type: "literal", field: "to", value: "x@a-secret.example" }], actions: [{ type: "drop" }], enabled: "yes" }), 400, 1004, "/enabled"],
      ["POST", rules, JSON.stringify({ matchers: [{ type: "literal", field: "to", value: "x@a-secret.example" }], actions: [{ type: "drop" }], bogus: 1 }), 400, 1004, "/bogus"],
      ["POST", rules, JSON.stringify({ matchers: "everything", actions: [{ type: "drop" }] }), 400, 1004, "/matchers"],
      ["POST", rules, JSON.stringify({ matchers: [{ type: "literal", field: "to", value: "x@a-secret.example" }], actions: [{ type: "forward", value: "owner@x.net" }] }), 400, 1004, "/actions/0/value"],
      ["POST", rules, JSON.stringify([1, 2]), 400, 1004, "/body"],
      ["POST", rules, JSON.stringify({ ["__proto__"]: { admin: true } }), 400, 6007, "/body"],
      ["GET", `${rules}?page=1&page=2`, undefined, 400, 1004, "/page"],
      ["GET", `${rules}?per_page=ten`, undefined, 400, 1004, "/per_page"],
      ["GET", `${rules}?enabled=maybe`, undefined, 400, 1004, "/enabled"],
      ["PATCH", `/client/v4/zones/${ids["zone_id"]}/email/routing`, JSON.stringify({ authentication: { spam_threshold: "high" } }), 400, 1004, "/authentication/spam_threshold"],
      ["POST", "/client/v4/accounts/acct-a/tokens", JSON.stringify({ name: "x", policies: [{ permission_groups: [{ id: "root" }], resources: { "com.cloudflare.api.account.acct-a": "*" } }] }), 400, 1004, "/policies/0/permission_groups/0/id"],
    ];
    for (const [method, path, body, status, code, pointer] of cases) {
      const response = await call(h, method, path, { token: tokens["a"], body });
      assert.equal(response.status, status, `${method} ${path} ${body}: ${response.body}`);
      const error = (JSON.parse(response.body) as { errors: { code: number; message: string; source?: { pointer: string } }[] }).errors[0]!;
      assert.equal(error.code, code, response.body);
      assert.equal(error.source?.pointer, pointer, response.body);
    }
    const tooBig = await call(h, "POST", rules, { token: tokens["a"], body: JSON.stringify({ name: "x".repeat(2 * 1024 * 1024) }) });
    assert.equal(tooBig.status, 413);
    const wrongType = await call(h, "POST", rules, { token: tokens["a"], body: "name=x", type: "text/csv" });
    assert.equal(wrongType.status, 415);
  });

  it("checks the token before reading a body: an unauthenticated upload gets 401 at once", async () => {
    const response = await call(h, "POST", "/cdn-cgi/handler/email?from=a@b.test&to=c@d.test", { body: Buffer.alloc(8 * 1024 * 1024, 0x61), type: "message/rfc822" });
    assert.equal(response.status, 401);
    const notOperator = await call(h, "POST", "/cdn-cgi/handler/email?from=a@b.test&to=c@d.test", { token: tokens["a"], body: "Subject: x\r\n\r\nx", type: "message/rfc822" });
    assert.equal(notOperator.status, 403, "an account token cannot run workers on posted messages");
    const repeated = await call(h, "POST", "/cdn-cgi/handler/email?from=a@b.test&to=c@d.test&to=e@f.test", { token: "test-admin-token", body: "Subject: x\r\n\r\nx", type: "message/rfc822" });
    assert.equal(repeated.status, 400, repeated.body);
    assert.match(repeated.body, /"pointer":"\/to"/);
  });
});

describe("API rate limit", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ destinations: [], overrides: { apiLimits: { tokenLimit: new FixedWindowCounter({ limit: 5, windowMs: 60_000 }), failureLimit: new FixedWindowCounter({ limit: 3, windowMs: 60_000 }) } } });
  });
  after(async () => h?.stop());

  it("answers 429 with Retry-After past the per-token limit, and limits failed authentications per address", async () => {
    const created = await createServices(h.configStore).forAccount({ account: "default", actor: CLI_OPERATOR }).tokens.create({ name: "busy", policies: [{ permission_groups: ALL_PERMISSIONS, resources: { "com.cloudflare.api.account.default": "*" } }] });
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 7; i += 1) {
      last = await call(h, "GET", "/client/v4/user/tokens/verify", { token: created.value });
      statuses.push(last.status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert.ok(Number(last!.headers["retry-after"]) > 0);
    assert.equal((JSON.parse(last!.body) as { errors: { code: number }[] }).errors[0]!.code, 971);
    const guesses: number[] = [];
    for (let i = 0; i < 5; i += 1) guesses.push((await call(h, "GET", "/client/v4/user/tokens/verify", { token: `mrt_${"0".repeat(32)}${"x".repeat(43)}` })).status);
    assert.deepEqual(guesses, [401, 401, 401, 429, 429]);
  });
});

describe("wrangler's email routing plan", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ destinations: [] });
  });
  after(async () => h?.stop());

  it("reports added, updated, conflicting and deleted addresses for one Worker, and nothing once applied", async () => {
    const services = createServices(h.configStore).forAccount({ account: "default", actor: CLI_OPERATOR });
    await services.zones.create("example.com");
    await services.rules.create({ matchers: [{ type: "literal", field: "to", value: "taken@example.com" }], actions: [{ type: "drop" }] });
    const worker = (value: string) => ({ matchers: [{ type: "literal", field: "to", value }], actions: [{ type: "worker", value: ["router"] }] });
    const plan = async (addresses: string[], catchAll: string[] = []) => {
      const response = await call(h, "POST", "/client/v4/accounts/default/email/routing/rules/plan", {
        token: "test-admin-token",
        body: JSON.stringify({ owner_worker_tag: "tag-router", rules: addresses.map(worker), catch_all_rules: catchAll.map((target) => ({ target, rule: { matchers: [{ type: "all" }], actions: [{ type: "worker", value: ["router"] }] } })) }),
      });
      assert.equal(response.status, 200, response.body);
      return (JSON.parse(response.body) as { result: { zones: { zone_name: string; changes: { type: string; target: string }[] }[] } }).result.zones.flatMap((zone) => zone.changes.map((change) => `${change.type} ${change.target}`)).sort();
    };
    assert.deepEqual(await plan(["new@example.com", "taken@example.com"], ["*@example.com"]), ["added *@example.com", "added new@example.com", "conflict taken@example.com"]);
    // Apply as wrangler does: rules owned by the Worker.
    // (wrangler uploads the Worker before it applies the plan)
    await services.workers.deploy({ name: "router", bundle: "export default { async email() {} };", compatibilityDate: "2024-09-23", compatibilityFlags: [], vars: {}, kv: [], sendEmail: [] });
    await services.rules.create({ ...worker("new@example.com"), source: "wrangler", owner_worker_tag: "tag-router" });
    await services.catchAll.set("example.com", { matchers: [{ type: "all" }], actions: [{ type: "worker", value: ["router"] }], enabled: true, source: "wrangler", owner_worker_tag: "tag-router" });
    assert.deepEqual(await plan(["new@example.com"], ["*@example.com"]), []);
    assert.deepEqual(await plan([]), ["deleted *@example.com", "deleted new@example.com"]);
    const bad = await call(h, "POST", "/client/v4/accounts/default/email/routing/rules/plan", { token: "test-admin-token", body: JSON.stringify({ owner_worker_tag: "t", rules: [worker("x@elsewhere.test")] }) });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /"pointer":"\/rules\/0\/matchers\/0\/value"/);
  });
});

describe("rules naming an Email Worker that is not deployed", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ destinations: [] });
  });
  after(async () => h?.stop());

  it("refuses them through the REST API with a catalogue error naming actions[0].value, and accepts them once the worker is deployed", async () => {
    const zone = await h.config.zones.create("bots.example");
    const rule = JSON.stringify({ matchers: [{ type: "literal", field: "to", value: "bot@bots.example" }], actions: [{ type: "worker", value: ["triage"] }] });
    const refused = await call(h, "POST", `/client/v4/zones/${zone.id}/email/routing/rules`, { token: "test-admin-token", body: rule });
    assert.equal(refused.status, 400, refused.body);
    const envelope = JSON.parse(refused.body) as { success: boolean; errors: { code: number; message: string; source?: { pointer: string } }[] };
    assert.equal(envelope.success, false);
    assert.equal(envelope.errors[0]!.code, 1008);
    assert.deepEqual(envelope.errors[0]!.source, { pointer: "/actions/0/value" });
    assert.match(envelope.errors[0]!.message, /^actions\[0\]\.value: Email Worker "triage" is not deployed/);
    assert.deepEqual((await h.config.rules.all()).map((r) => r.matchers[0]?.value), [], "nothing was stored");
    const catchAll = await call(h, "PUT", `/client/v4/zones/${zone.id}/email/routing/rules/catch_all`, { token: "test-admin-token", body: JSON.stringify({ matchers: [{ type: "all" }], actions: [{ type: "worker", value: ["triage"] }], enabled: true }) });
    assert.equal(catchAll.status, 400, catchAll.body);
    assert.match(catchAll.body, /"pointer":"\/actions\/0\/value"/);

    await h.config.workers.deploy({ name: "triage", bundle: "export default { async email() {} };", compatibilityDate: "2024-09-23", compatibilityFlags: [], vars: {}, kv: [], sendEmail: [] });
    const accepted = await call(h, "POST", `/client/v4/zones/${zone.id}/email/routing/rules`, { token: "test-admin-token", body: rule });
    assert.equal(accepted.status, 200, accepted.body);
    const caught = await call(h, "PUT", `/client/v4/zones/${zone.id}/email/routing/rules/catch_all`, { token: "test-admin-token", body: JSON.stringify({ matchers: [{ type: "all" }], actions: [{ type: "worker", value: ["triage"] }], enabled: true }) });
    assert.equal(caught.status, 200, caught.body);
  });
});
