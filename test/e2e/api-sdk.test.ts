/**
 * The REST API through the official `cloudflare` SDK (7.x), pointed at a real mailroute over
 * loopback with only the base URL and token changed: accounts, tokens, zones, Email Routing
 * settings, destination addresses verified by a real link from a real message, rules with
 * paging over several pages, the catch-all, DNS records, the audit log — and mail routed by
 * what the API created.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import Cloudflare from "cloudflare";
import PostalMime from "postal-mime";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

function http(h: Harness, method: string, path: string, body?: string): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: h.mailroute.http.port, method, path, headers: body === undefined ? {} : { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function sendMail(h: Harness, from: string, to: string): Promise<number> {
  const { client } = await SmtpTestClient.connect(h.port);
  try {
    const { rcpts } = await client.envelope(from, [to]);
    if (rcpts[0]!.code !== 250) return rcpts[0]!.code;
    return (await client.data(testMessage({ from, to }))).code;
  } finally {
    await client.quit();
  }
}

describe("REST API with the cloudflare SDK", () => {
  let h: Harness;
  let operator: Cloudflare;
  let cf: Cloudflare;
  let accountId: string;
  let zoneId: string;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"] });
    operator = new Cloudflare({ apiToken: "test-admin-token", baseURL: `http://127.0.0.1:${h.mailroute.http.port}/client/v4`, maxRetries: 0 });
  });
  after(async () => h?.stop());

  it("lets the operator create an account and an API token whose value is shown once", async () => {
    const account = await operator.accounts.create({ name: "Acme Mail", type: "standard" });
    accountId = account.id;
    assert.equal(account.name, "Acme Mail");
    const groups = await operator.accounts.tokens.permissionGroups.list({ account_id: accountId });
    const names = [];
    for await (const group of groups) names.push((group as { name: string }).name);
    for (const wanted of ["Email Routing Rules Write", "Email Routing Addresses Write", "Zone Write", "Account Settings Read"]) assert.ok(names.includes(wanted), wanted);
    const token = await operator.accounts.tokens.create({
      account_id: accountId,
      name: "ci",
      policies: [
        {
          effect: "allow",
          permission_groups: ["Email Routing Rules Write", "Email Routing Addresses Write", "Zone Write", "Account Settings Read", "API Tokens Read"].map((name) => ({ id: (groups.result as { id: string; name: string }[]).find((g) => g.name === name)!.id })),
          resources: { [`com.cloudflare.api.account.${accountId}`]: "*" },
        },
      ],
    });
    assert.match(token.value ?? "", /^mrt_/);
    cf = new Cloudflare({ apiToken: token.value!, baseURL: `http://127.0.0.1:${h.mailroute.http.port}/client/v4`, maxRetries: 0 });
    const verified = await cf.user.tokens.verify();
    assert.equal(verified.status, "active");
    const listed = await operator.accounts.tokens.list({ account_id: accountId });
    assert.equal(listed.result.length, 1);
    assert.equal((listed.result[0] as { value?: string }).value, undefined, "the value is never listed");
  });

  it("creates a zone and enables Email Routing on it", async () => {
    const zone = await cf.zones.create({ account: { id: accountId }, name: "example.com", type: "full" });
    zoneId = zone.id;
    assert.equal(zone.name, "example.com");
    const found = await cf.zones.list({ name: "example.com", account: { id: accountId } });
    assert.deepEqual(found.result.map((z) => z.id), [zoneId]);
    await cf.emailRouting.disable({ zone_id: zoneId });
    assert.equal((await cf.emailRouting.get({ zone_id: zoneId })).enabled, false);
    const settings = await cf.emailRouting.enable({ zone_id: zoneId });
    assert.equal(settings.enabled, true);
    assert.equal(settings.name, "example.com");
    const edited = await cf.emailRouting.edit({ zone_id: zoneId, support_subaddress: true } as never);
    assert.equal(edited.support_subaddress, true);
  });

  it("lists the DNS records to publish, MX pointing at this server", async () => {
    const records = (await cf.emailRouting.dns.get({ zone_id: zoneId })) as unknown as { type: string; name: string; content: string }[];
    const mx = records.find((record) => record.type === "MX");
    assert.equal(mx?.content, "mx.mailroute.test");
    assert.ok(records.some((record) => record.type === "TXT" && record.content.startsWith("v=spf1")));
    assert.ok(records.some((record) => record.type === "TXT" && record.name.includes("._domainkey.")), "a DKIM record");
  });

  it("verifies a destination address through the link in a real message, only when the confirm button is pressed", async () => {
    const address = await cf.emailRouting.addresses.create({ account_id: accountId, email: "owner@dest.test" });
    assert.equal(address.verified, null);
    const sink = h.sinks["dest.test"]!;
    const [message] = await sink.waitForMessages(1, 15_000);
    assert.ok(message!.to.includes("owner@dest.test"));
    assert.match(message!.text, /^DKIM-Signature: .*d=mx\.mailroute\.test/m, "signed for our host name");
    const parsed = await PostalMime.parse(message!.raw);
    assert.equal(parsed.subject, "Verify owner@dest.test as a forwarding destination");
    const link = /http:\/\/\S+\/verify\/[A-Za-z0-9_-]+/.exec(parsed.text ?? "")?.[0];
    assert.ok(link !== undefined, "the message carries the link");
    const path = new URL(link).pathname;
    const page = await http(h, "GET", path);
    assert.equal(page.status, 200);
    assert.match(page.body, /<form method="post">/);
    assert.equal(page.headers["referrer-policy"], "no-referrer");
    assert.equal((await cf.emailRouting.addresses.get(address.id!, { account_id: accountId })).verified, null, "opening the link (as a scanner would) verifies nothing");
    const confirmed = await http(h, "POST", path, "");
    assert.equal(confirmed.status, 200);
    assert.match(confirmed.body, /owner@dest\.test<\/strong> is verified/);
    assert.notEqual((await cf.emailRouting.addresses.get(address.id!, { account_id: accountId })).verified, null);
    assert.equal((await http(h, "POST", path, "")).status, 410, "a link works once");
    const unverified = await cf.emailRouting.addresses.list({ account_id: accountId, verified: false });
    assert.equal(unverified.result.length, 0);
    sink.reset();
  });

  it("creates, reads, updates, pages and deletes rules, and routes mail by them", async () => {
    const rule = await cf.emailRouting.rules.create({
      zone_id: zoneId,
      name: "hello",
      enabled: true,
      matchers: [{ type: "literal", field: "to", value: "hello@example.com" }],
      actions: [{ type: "forward", value: ["owner@dest.test"] }],
    });
    assert.equal((rule as { status?: string }).status, "active");
    for (let i = 0; i < 23; i += 1) {
      await cf.emailRouting.rules.create({ zone_id: zoneId, matchers: [{ type: "literal", field: "to", value: `r${i}@example.com` }], actions: [{ type: "drop" }] });
    }
    const seen: string[] = [];
    for await (const item of cf.emailRouting.rules.list({ zone_id: zoneId, per_page: 10 })) seen.push(item.id!);
    assert.equal(seen.length, 24, "every rule once, over three pages");
    assert.equal(new Set(seen).size, 24);
    const firstPage = await cf.emailRouting.rules.list({ zone_id: zoneId, per_page: 10, page: 3 });
    assert.equal(firstPage.result.length, 4);

    await h.reload();
    assert.equal(await sendMail(h, "friend@sender.test", "hello@example.com"), 250);
    await h.sinks["dest.test"]!.waitForMessages(1, 15_000);

    const updated = await cf.emailRouting.rules.update(rule.id!, { zone_id: zoneId, matchers: rule.matchers!, actions: rule.actions!, enabled: false, name: "hello (off)" });
    assert.equal(updated.enabled, false);
    assert.equal((await cf.emailRouting.rules.get(rule.id!, { zone_id: zoneId })).name, "hello (off)");
    await h.reload();
    assert.equal(await sendMail(h, "friend@sender.test", "hello@example.com"), 550, "a disabled rule refuses at RCPT");
    await cf.emailRouting.rules.delete(rule.id!, { zone_id: zoneId });
    await assert.rejects(cf.emailRouting.rules.get(rule.id!, { zone_id: zoneId }), (error: unknown) => (error as { status?: number }).status === 404);
  });

  it("sets the catch-all and reads it back", async () => {
    const set = await cf.emailRouting.rules.catchAlls.update({ zone_id: zoneId, matchers: [{ type: "all" }], actions: [{ type: "forward", value: ["owner@dest.test"] }], enabled: true, name: "everything else" });
    assert.equal(set.enabled, true);
    const got = await cf.emailRouting.rules.catchAlls.get({ zone_id: zoneId });
    assert.deepEqual(got.actions, [{ type: "forward", value: ["owner@dest.test"] }]);
    await h.reload();
    h.sinks["dest.test"]!.reset();
    assert.equal(await sendMail(h, "friend@sender.test", "anyone@example.com"), 250);
    await h.sinks["dest.test"]!.waitForMessages(1, 15_000);
  });

  it("names the field and the reason of a bad request, in Cloudflare's envelope", async () => {
    await assert.rejects(
      cf.emailRouting.rules.create({ zone_id: zoneId, matchers: [{ type: "literal", field: "to", value: "x@example.com" }], actions: [{ type: "forward", value: ["bob@"] }] }),
      (error: unknown) => {
        const { status, errors } = error as { status?: number; errors?: { code: number; message: string; source?: { pointer: string } }[] };
        return status === 400 && /^actions\[0\]\.value: destination "bob@"/.test(errors?.[0]?.message ?? "") && errors?.[0]?.source?.pointer === "/actions/0/value";
      },
    );
  });

  it("records every change in the audit log, with the token as actor", async () => {
    const entries = [];
    for await (const entry of cf.accounts.logs.audit.list({ account_id: accountId, since: "2000-01-01", before: "2100-01-01", limit: 10 } as never)) entries.push(entry as { action: { type: string; result: string }; actor: { token_name: string | null } });
    const types = entries.map((e) => e.action.type);
    for (const wanted of ["zone.create", "address.create", "address.verify", "rule.create", "rule.update", "rule.delete", "catch_all.update"]) assert.ok(types.includes(wanted), wanted);
    assert.ok(entries.filter((e) => e.action.type === "rule.create").length >= 24, "paged through every entry");
    assert.ok(entries.some((e) => e.actor.token_name === "ci"));
    assert.ok(entries.some((e) => e.action.result === "failure"), "the refused rule is there too");
  });
});
