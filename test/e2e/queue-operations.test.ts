/**
 * Operating the durable queue (issue 13): the CLI (`mailroute queue …`, the real entry point)
 * and the REST API see the same queued message, retry it and delete it, each action audited;
 * another account sees nothing of it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { main } from "../../src/cli/main.ts";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices } from "../../src/core/services.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

async function cli(h: Harness, ...argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await main([...argv, "--data-dir", h.dataDir], { out: (line) => lines.push(line) });
  return { code, out: lines.join("\n") };
}

async function api(h: Harness, method: string, path: string, token = "test-admin-token"): Promise<{ status: number; body: { success: boolean; result: unknown; errors: { code: number; message: string }[] } }> {
  const response = await fetch(`http://127.0.0.1:${h.mailroute.http.port}/client/v4${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as never };
}

describe("queue operations", () => {
  let h: Harness;
  let id: string;

  before(async () => {
    // retries an hour apart: the message stays put while the test looks at it
    h = await startHarness({ destinations: ["dest.test"], settings: { "queue-min-backoff": "3600000", "queue-max-backoff": "3600000", "queue-poll": "3600000" } });
    await h.config.zones.create("example.com");
    await h.config.zones.update("example.com", { deliveryMode: "queue" });
    await h.config.addresses.create("held@dest.test", { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "held@example.com" }], actions: [{ type: "forward", value: ["held@dest.test"] }] });
    await h.reload();
    h.sinks["dest.test"]!.fail({ stage: "data", code: 452, text: "4.2.2 mailbox full", address: "held@dest.test" });
    const { client } = await SmtpTestClient.connect(h.port);
    await client.envelope("sender@elsewhere.test", ["held@example.com"]);
    const reply = await client.data(testMessage({ from: "sender@elsewhere.test", to: "held@example.com", subject: "waiting" }));
    await client.quit();
    assert.equal(reply.code, 250, reply.line);
  });

  after(() => h.stop());

  it("lists and shows the queued message from the CLI, with what it waits for and never its body", async () => {
    const list = await cli(h, "queue", "list", "--json");
    assert.equal(list.code, 0, list.out);
    const messages = JSON.parse(list.out) as { id: string; recipients: string[]; pending: string[][]; lastReply: string; subject: string }[];
    assert.equal(messages.length, 1);
    id = messages[0]!.id;
    assert.deepEqual(messages[0]!.recipients, ["held@example.com"]);
    assert.deepEqual(messages[0]!.pending, [["held@dest.test"]]);
    assert.equal(messages[0]!.subject, "waiting");
    assert.match(messages[0]!.lastReply, /452 4\.2\.2 mailbox full/);
    const show = await cli(h, "queue", "show", id);
    assert.equal(show.code, 0, show.out);
    assert.match(show.out, /pending: +held@dest\.test/);
    assert.doesNotMatch(show.out, /Hello from the test suite/);
  });

  it("serves the same message through the REST API, and hides it from another account", async () => {
    const listed = await api(h, "GET", "/accounts/default/email/routing/queue");
    assert.equal(listed.status, 200);
    assert.deepEqual((listed.body.result as { id: string }[]).map((m) => m.id), [id]);
    const one = await api(h, "GET", `/accounts/default/email/routing/queue/${id}`);
    assert.equal((one.body.result as { attempts: number }).attempts, 0);
    const services = createServices(h.configStore);
    await services.accounts(CLI_OPERATOR).create({ name: "Other", id: "other" });
    const { value: otherToken } = await services.forAccount({ account: "other", actor: CLI_OPERATOR }).tokens.create({ name: "t", policies: [{ permission_groups: [{ id: "5f1c0e7a2b3d4e8f9a0b1c2d3e4f5a03" }], resources: { "com.cloudflare.api.account.other": "*" } }] });
    const foreign = await api(h, "GET", `/accounts/default/email/routing/queue/${id}`, otherToken);
    assert.equal(foreign.status, 404);
    assert.equal((await createServices(h.configStore).forAccount({ account: "other", actor: CLI_OPERATOR }).queue.list()).length, 0);
  });

  it("retries now and deletes, each audited, and refuses an unknown id with the reason", async () => {
    const before = Date.now();
    const retried = await cli(h, "queue", "retry", id);
    assert.equal(retried.code, 0, retried.out);
    const due = await api(h, "GET", `/accounts/default/email/routing/queue/${id}`);
    assert.ok(Date.parse((due.body.result as { next_attempt: string }).next_attempt) <= Date.now() && Date.parse((due.body.result as { next_attempt: string }).next_attempt) >= before - 1000);
    const deleted = await api(h, "DELETE", `/accounts/default/email/routing/queue/${id}`);
    assert.equal(deleted.status, 200);
    assert.equal((await cli(h, "queue", "list", "--json")).out.trim(), "[]");
    const missing = await cli(h, "queue", "show", id);
    assert.notEqual(missing.code, 0);
    const gone = await api(h, "GET", `/accounts/default/email/routing/queue/${id}`);
    assert.equal(gone.status, 404);
    const audit = await h.config.audit.list({ limit: 50 });
    const actions = audit.entries.map((entry) => `${entry.action.type}:${entry.action.result ? "success" : "failure"}`);
    assert.ok(actions.includes("queue.retry:success"), actions.join(" "));
    assert.ok(actions.includes("queue.delete:success"), actions.join(" "));
  });
});
