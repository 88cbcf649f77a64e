/**
 * Issue 10 end to end: mail sent over real SMTP moves the Prometheus counters by exactly
 * the messages sent, the exposition text passes a strict line grammar, and the activity and
 * summary endpoints show each message with the right outcome (a 451 is "deferred", not
 * "rejected"), with filters, paging and a detail view — and another account sees none of it.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices } from "../../src/core/services.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

function get(h: Harness, path: string, token?: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
    const req = request({ host: "127.0.0.1", port: h.mailroute.http.port, method: "GET", path, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, type: String(res.headers["content-type"] ?? "") }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function send(h: Harness, to: string, subject: string): Promise<number> {
  const { client } = await SmtpTestClient.connect(h.port);
  const env = await client.envelope("sender@origin.test", [to]);
  const code = env.rcpts[0]!.code === 250 ? (await client.data(testMessage({ from: "sender@origin.test", to, subject }))).code : env.rcpts[0]!.code;
  await client.quit();
  return code;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*")*,?)?\})? (-?(?:\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+|NaN|\+Inf|-Inf))(?: -?\d+)?$/;

/** Prometheus text format 0.0.4, strictly: HELP/TYPE lines, samples, each family typed once before its samples. */
function parseExposition(text: string): Map<string, number> {
  assert.ok(text.endsWith("\n"), "the exposition ends with a newline");
  const samples = new Map<string, number>();
  const typed = new Map<string, string>();
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta !== null) {
      assert.match(meta[2]!, METRIC_NAME, line);
      if (meta[1] === "TYPE") {
        assert.ok(["counter", "gauge", "histogram", "summary", "untyped"].includes(meta[3]!), line);
        assert.ok(!typed.has(meta[2]!), `TYPE once: ${line}`);
        typed.set(meta[2]!, meta[3]!);
      }
      continue;
    }
    const sample = SAMPLE.exec(line);
    assert.ok(sample !== null, `a valid sample line: ${JSON.stringify(line)}`);
    const family = sample[1]!.replace(/_(bucket|sum|count)$/, "");
    assert.ok(typed.has(sample[1]!) || typed.get(family) === "histogram", `typed before use: ${line}`);
    samples.set(`${sample[1]}${sample[2] ?? ""}`, Number(sample[3]));
  }
  return samples;
}

describe("activity API and Prometheus metrics end to end", () => {
  let h: Harness;
  let zoneId = "";
  let reader = "";
  let foreign = "";

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"], settings: { "metrics-port": "0" } });
    const zone = await h.config.zones.create("example.com");
    zoneId = zone.id;
    for (const address of ["alice@dest.test", "bob@dest.test"]) await h.config.addresses.create(address, { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@example.com" }], actions: [{ type: "forward", value: ["alice@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "later@example.com" }], actions: [{ type: "forward", value: ["bob@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "quiet@example.com" }], actions: [{ type: "drop" }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "gone@example.com" }], actions: [{ type: "reject", value: ["retired"] }] });
    h.sinks["dest.test"]!.fail({ stage: "rcpt", code: 451, text: "4.3.0 try later", address: "bob@dest.test" });
    const account = (id: string) => ({ [`com.cloudflare.api.account.${id}`]: "*" });
    reader = (await h.config.tokens.create({ name: "reader", policies: [{ permission_groups: [{ id: "Email Routing Rules Read" }], resources: account("default") }] })).value;
    const services = createServices(h.configStore);
    await services.accounts(CLI_OPERATOR).create({ id: "acct-other", name: "Other" });
    const other = services.forAccount({ account: "acct-other", actor: CLI_OPERATOR });
    foreign = (await other.tokens.create({ name: "other", policies: [{ permission_groups: [{ id: "Email Routing Rules Read" }], resources: account("acct-other") }] })).value;
    await h.reload();
  });
  after(async () => h?.stop());

  const metric = (samples: Map<string, number>, key: string) => samples.get(key) ?? 0;

  it("moves the counters by exactly the messages sent over SMTP; the text parses; no address in a label", async () => {
    const beforeText = await get(h, "/metrics", "test-admin-token");
    assert.equal(beforeText.status, 200);
    assert.match(beforeText.type, /^text\/plain; version=0\.0\.4/);
    const b = parseExposition(beforeText.body);

    assert.equal(await send(h, "hello@example.com", "first hello"), 250);
    assert.equal(await send(h, "hello@example.com", "second hello zebra"), 250);
    assert.equal(await send(h, "quiet@example.com", "into the void"), 250);
    assert.equal(await send(h, "later@example.com", "try again"), 451);
    assert.equal(await send(h, "gone@example.com", "refused at rcpt"), 550);

    const afterText = await get(h, "/metrics", "test-admin-token");
    const a = parseExposition(afterText.body);
    const delta = (key: string) => metric(a, key) - metric(b, key);
    assert.equal(delta('mailroute_messages_total{action="forward",outcome="forwarded"}'), 2);
    assert.equal(delta('mailroute_messages_total{action="drop",outcome="dropped"}'), 1);
    assert.equal(delta('mailroute_messages_total{action="forward",outcome="deferred"}'), 1);
    assert.equal(delta('mailroute_messages_total{action="forward",outcome="rejected"}'), 0);
    assert.equal(delta('mailroute_smtp_replies_total{code="250"}'), 3);
    assert.equal(delta('mailroute_smtp_replies_total{code="451"}'), 1);
    assert.equal(delta('mailroute_smtp_replies_total{code="550"}'), 1);
    // three relays (two delivered, one deferred); a drop relays nothing
    assert.equal(delta("mailroute_relay_duration_seconds_count"), 3);
    assert.ok(a.has("mailroute_smtp_sessions_open"));
    assert.ok(a.has("mailroute_pool_connections"));
    assert.ok(a.has("mailroute_worker_duration_seconds_count"));
    assert.ok(!afterText.body.includes("@"), "no address anywhere in the exposition");
    assert.ok(!afterText.body.includes("hello"), "no subject or local part anywhere in the exposition");
    // the pool keeps the connection that delivered to dest.test for the next message
    assert.ok(metric(a, "mailroute_pool_connections") >= 1, "the pool gauge reads the pool");
    // the refusal at RCPT reaches the zone's activity log (summarised per session, off the SMTP path)
    const deadline = Date.now() + 10_000;
    for (;;) {
      const listed = JSON.parse((await get(h, `/client/v4/zones/${zoneId}/email/routing/activity?to=gone@example.com`, reader)).body) as { result: unknown[] };
      if (listed.result.length === 1) break;
      assert.ok(Date.now() < deadline, "the refusal of gone@example.com never reached the zone's activity");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  it("serves /metrics without a token on --metrics-port, and nothing else there", async () => {
    const port = h.mailroute.metrics!.port;
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^# HELP mailroute_/m);
    const api = await fetch(`http://127.0.0.1:${port}/client/v4/accounts`);
    assert.equal(api.status, 404);
  });

  it("serves /metrics only to the operator's token", async () => {
    assert.equal((await get(h, "/metrics")).status, 401);
    assert.equal((await get(h, "/metrics", "wrong-token")).status, 401);
    const account = await get(h, "/metrics", reader);
    assert.equal(account.status, 403);
    assert.ok(!account.body.includes("mailroute_messages_total"));
  });

  it("lists the zone's activity newest first with the outcome vocabulary, filters and paging", async () => {
    const base = `/client/v4/zones/${zoneId}/email/routing/activity`;
    const all = JSON.parse((await get(h, base, reader)).body) as { success: boolean; result: Record<string, unknown>[]; result_info: { total_count: number } };
    assert.equal(all.success, true);
    assert.equal(all.result_info.total_count, 5);
    assert.deepEqual(all.result.map((item) => [item["to"], item["outcome"]]), [
      ["gone@example.com", "rejected"],
      ["later@example.com", "deferred"],
      ["quiet@example.com", "dropped"],
      ["hello@example.com", "forwarded"],
      ["hello@example.com", "forwarded"],
    ]);
    const first = all.result[1]!;
    assert.deepEqual(Object.keys(first).sort(), ["action", "arc", "dkim", "dmarc", "duration_ms", "from", "id", "message_id", "outcome", "received_at", "reply_code", "reply_text", "size", "spam_score", "spf", "subject", "to", "upstream"].sort());
    assert.equal(first["reply_code"], 451);
    assert.match(String(first["upstream"]), /try later/);
    // a refusal at RCPT never reached DATA: nothing to authenticate
    for (const item of all.result.filter((entry) => entry["action"] !== "refused")) assert.equal(typeof item["spf"], "string", "SPF was evaluated and stored");

    const forwarded = JSON.parse((await get(h, `${base}?outcome=forwarded`, reader)).body) as { result: { to: string }[] };
    assert.deepEqual(forwarded.result.map((item) => item.to), ["hello@example.com", "hello@example.com"]);
    const searched = JSON.parse((await get(h, `${base}?q=ZEBRA`, reader)).body) as { result: { subject: string }[] };
    assert.deepEqual(searched.result.map((item) => item.subject), ["second hello zebra"]);
    const byTo = JSON.parse((await get(h, `${base}?to=QUIET@example.com&from=sender@origin.test`, reader)).body) as { result: { outcome: string }[] };
    assert.deepEqual(byTo.result.map((item) => item.outcome), ["dropped"]);
    const future = JSON.parse((await get(h, `${base}?since=2999-01-01T00:00:00Z`, reader)).body) as { result: unknown[] };
    assert.equal(future.result.length, 0);
    const page = JSON.parse((await get(h, `${base}?per_page=1&page=2`, reader)).body) as { result: { to: string }[]; result_info: { total_count: number; total_pages: number } };
    assert.deepEqual(page.result.map((item) => item.to), ["later@example.com"]);
    assert.equal(page.result_info.total_pages, 5);
    assert.equal((await get(h, `${base}?outcome=bounced`, reader)).status, 400);
    assert.equal((await get(h, `${base}?since=yesterday`, reader)).status, 400);

    const detail = JSON.parse((await get(h, `${base}/${String(first["id"])}`, reader)).body) as { result: { outcome: string; detail: { chains: unknown[] }; destinations: string[] } };
    assert.equal(detail.result.outcome, "deferred");
    assert.equal(detail.result.detail.chains.length, 1);
    const delivered = all.result[4]!;
    const deliveredDetail = JSON.parse((await get(h, `${base}/${String(delivered["id"])}`, reader)).body) as { result: { destinations: string[] } };
    assert.deepEqual(deliveredDetail.result.destinations, ["alice@dest.test"]);
    assert.equal((await get(h, `${base}/999999`, reader)).status, 404);
  });

  it("summarises the zone per outcome with hourly and daily buckets", async () => {
    const base = `/client/v4/zones/${zoneId}/email/routing/summary`;
    const day = JSON.parse((await get(h, `${base}?range=24h`, reader)).body) as { result: { range: string; totals: Record<string, number>; series: ({ start: string } & Record<string, number>)[] } };
    assert.equal(day.result.range, "24h");
    assert.deepEqual(day.result.totals, { received: 5, forwarded: 2, dropped: 1, rejected: 1, delivery_failed: 0, deferred: 1, worker: 0, queued: 0 });
    assert.equal(day.result.series.length, 24);
    assert.match(day.result.series[23]!.start, /T\d\d:00:00\.000Z$/);
    assert.equal(day.result.series.reduce((sum, bucket) => sum + (bucket.received ?? 0), 0), 5);
    const month = JSON.parse((await get(h, `${base}?range=30d`, reader)).body) as { result: { series: { start: string; forwarded: number }[] } };
    assert.equal(month.result.series.length, 30);
    assert.match(month.result.series[29]!.start, /T00:00:00\.000Z$/);
    assert.equal(month.result.series[29]!.forwarded, 2);
    assert.equal((await get(h, `${base}?range=1y`, reader)).status, 400);
  });

  it("shows another account's token nothing: 404", async () => {
    for (const path of [`/client/v4/zones/${zoneId}/email/routing/activity`, `/client/v4/zones/${zoneId}/email/routing/summary`]) {
      const response = await get(h, path, foreign);
      assert.equal(response.status, 404, path);
      assert.ok(!response.body.includes("example.com/"), path);
      assert.ok(!response.body.includes("hello@"), path);
    }
  });
});
