/**
 * Cloudflare's GraphQL Analytics API for email routing (issue 10), against a real mailroute:
 * the query from Cloudflare's own tutorial, verbatim, returns the messages sent over SMTP with
 * their authentication results; groups count by the requested dimensions; another account's
 * token sees no zone; bad input comes back in GraphQL's errors array.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices } from "../../src/core/services.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

// Cloudflare's "Querying Email Routing events with GraphQL" tutorial query, as published
const TUTORIAL_QUERY = `query EmailRoutingActivity($zoneTag: string, $filter: EmailRoutingAdaptiveFilter_InputObject) {
  viewer {
    zones(filter: { zoneTag: $zoneTag }) {
      emailRoutingAdaptive(filter: $filter, limit: 3, orderBy: [datetime_DESC]) {
        datetime
        id: sessionId
        messageId
        from
        to
        subject
        status
        action
        spf
        dkim
        dmarc
        arc
        errorDetail
        isNDR
        isSpam
        spamThreshold
        spamScore
      }
    }
  }
}`;

async function graphql(h: Harness, token: string, query: string, variables?: unknown): Promise<{ status: number; body: { data: any; errors: { message: string }[] | null } }> {
  const response = await fetch(`http://127.0.0.1:${h.mailroute.http.port}/client/v4/graphql`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as never };
}

async function send(h: Harness, to: string, subject: string): Promise<number> {
  const { client } = await SmtpTestClient.connect(h.port);
  const envelope = await client.envelope("sender@origin.test", [to]);
  const code = envelope.rcpts[0]!.code === 250 ? (await client.data(testMessage({ from: "sender@origin.test", to, subject }))).code : envelope.rcpts[0]!.code;
  await client.quit();
  return code;
}

describe("GraphQL analytics", () => {
  let h: Harness;
  let zoneTag = "";
  let reader = "";
  let foreign = "";
  const window = { datetime_geq: new Date(Date.now() - 3_600_000).toISOString(), datetime_leq: new Date(Date.now() + 3_600_000).toISOString() };

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"] });
    zoneTag = (await h.config.zones.create("example.com")).id;
    await h.config.addresses.create("alice@dest.test", { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@example.com" }], actions: [{ type: "forward", value: ["alice@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "quiet@example.com" }], actions: [{ type: "drop" }] });
    const account = (id: string) => ({ [`com.cloudflare.api.account.${id}`]: "*" });
    reader = (await h.config.tokens.create({ name: "reader", policies: [{ permission_groups: [{ id: "Email Routing Rules Read" }], resources: account("default") }] })).value;
    const services = createServices(h.configStore);
    await services.accounts(CLI_OPERATOR).create({ id: "acct-other", name: "Other" });
    foreign = (await services.forAccount({ account: "acct-other", actor: CLI_OPERATOR }).tokens.create({ name: "o", policies: [{ permission_groups: [{ id: "Email Routing Rules Read" }], resources: account("acct-other") }] })).value;
    await h.reload();
    assert.equal(await send(h, "hello@example.com", "first"), 250);
    assert.equal(await send(h, "hello@example.com", "second"), 250);
    assert.equal(await send(h, "quiet@example.com", "third"), 250);
  });
  after(async () => h?.stop());

  it("answers Cloudflare's tutorial query, verbatim, with the messages and their authentication results", async () => {
    const { status, body } = await graphql(h, reader, TUTORIAL_QUERY, { zoneTag, filter: window });
    assert.equal(status, 200);
    assert.equal(body.errors, null);
    const rows = body.data.viewer.zones[0].emailRoutingAdaptive as Record<string, unknown>[];
    assert.deepEqual(rows.map((row) => [row["to"], row["subject"], row["status"], row["action"]]), [
      ["quiet@example.com", "third", "dropped", "drop"],
      ["hello@example.com", "second", "forwarded", "forward"],
      ["hello@example.com", "first", "forwarded", "forward"],
    ]);
    for (const row of rows) {
      assert.equal(typeof row["spf"], "string");
      assert.equal(typeof row["dmarc"], "string");
      assert.match(String(row["datetime"]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(row["isNDR"], 0);
    }
  });

  it("counts by the dimensions the query asks for", async () => {
    const query = `query ($zoneTag: string, $filter: EmailRoutingAdaptiveFilter_InputObject) {
      viewer { zones(filter: { zoneTag: $zoneTag }) { emailRoutingAdaptiveGroups(filter: $filter, limit: 10, orderBy: [count_DESC]) { count dimensions { status action } } } }
    }`;
    const { body } = await graphql(h, reader, query, { zoneTag, filter: window });
    assert.equal(body.errors, null);
    const groups = body.data.viewer.zones[0].emailRoutingAdaptiveGroups as { count: number; dimensions: Record<string, string> }[];
    assert.deepEqual(groups, [
      { count: 2, dimensions: { status: "forwarded", action: "forward" } },
      { count: 1, dimensions: { status: "dropped", action: "drop" } },
    ]);
    const filtered = await graphql(h, reader, query, { zoneTag, filter: { ...window, status: "dropped" } });
    assert.deepEqual(filtered.body.data.viewer.zones[0].emailRoutingAdaptiveGroups, [{ count: 1, dimensions: { status: "dropped", action: "drop" } }]);
  });

  it("shows another account's token no zone at all, and refuses a request without a token", async () => {
    const { body } = await graphql(h, foreign, TUTORIAL_QUERY, { zoneTag, filter: window });
    assert.deepEqual(body.data.viewer.zones, []);
    assert.ok(!JSON.stringify(body).includes("hello@"));
    const anonymous = await fetch(`http://127.0.0.1:${h.mailroute.http.port}/client/v4/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: TUTORIAL_QUERY }) });
    assert.equal(anonymous.status, 401);
  });

  it("reports bad queries and out-of-range limits in GraphQL's errors array", async () => {
    const unknown = await graphql(h, reader, "{ viewer { zones(filter: {}) { nosuchfield } } }");
    assert.match(unknown.body.errors![0]!.message, /nosuchfield/);
    const tooMany = await graphql(h, reader, `query ($zoneTag: string) { viewer { zones(filter: { zoneTag: $zoneTag }) { emailRoutingAdaptive(limit: 100000) { to } } } }`, { zoneTag });
    assert.match(tooMany.body.errors![0]!.message, /limit: must be a whole number from 1 to 10000/);
  });
});
