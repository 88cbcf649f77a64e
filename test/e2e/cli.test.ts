import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient } from "../support/smtp-test-client.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "..", "bin", "mailroute.js");

async function mailroute(h: Harness, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args, ...(args[0] === "send" ? [] : ["--data-dir", h.dataDir])], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === "number" ? failure.code : -1, stdout: failure.stdout ?? "", stderr: failure.stderr ?? "" };
  }
}

async function rcptCode(h: Harness, address: string): Promise<number> {
  const { client } = await SmtpTestClient.connect(h.port);
  const { rcpts } = await client.envelope("sender@origin.test", [address]);
  await client.quit();
  return rcpts[0]!.code;
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check()) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

describe("mailroute CLI against a running server", () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"] });
  });

  after(async () => {
    await h?.stop();
  });

  it("configures a domain, a destination and a rule that the running server applies within a second", async () => {
    assert.equal((await mailroute(h, "domain", "add", "live.example", "--subaddressing")).code, 0);
    assert.equal((await mailroute(h, "address", "add", "me@dest.test", "--verified")).code, 0);
    assert.equal(await rcptCode(h, "hello@live.example"), 550, "no rule yet");
    const added = await mailroute(h, "rule", "add", "hello@live.example", "--forward", "me@dest.test");
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /added rule for hello@live\.example: forward to me@dest\.test/);
    // The CLI ran in another process; the server sees it through the config version poll.
    await eventually(async () => (await rcptCode(h, "hello+tag@live.example")) === 250, 1500);

    assert.equal((await mailroute(h, "rule", "disable", "hello@live.example")).code, 0);
    await eventually(async () => (await rcptCode(h, "hello@live.example")) === 550, 1500);
    assert.equal((await mailroute(h, "rule", "enable", "hello@live.example")).code, 0);
    await eventually(async () => (await rcptCode(h, "hello@live.example")) === 250, 1500);

    assert.equal((await mailroute(h, "catch-all", "set", "live.example", "--drop")).code, 0);
    await eventually(async () => (await rcptCode(h, "random@live.example")) === 250, 1500);
    assert.equal((await mailroute(h, "catch-all", "set", "live.example", "--disable")).code, 0);
    await eventually(async () => (await rcptCode(h, "random@live.example")) === 550, 1500);
  });

  it("explains a route without sending anything", async () => {
    await mailroute(h, "domain", "add", "explain.example", "--subaddressing");
    await mailroute(h, "address", "add", "me2@dest.test", "--verified");
    await mailroute(h, "rule", "add", "sales@explain.example", "--forward", "me2@dest.test : me@dest.test");
    const explained = await mailroute(h, "route", "Sales+Leads@explain.example");
    assert.equal(explained.code, 0, explained.stderr);
    assert.match(explained.stdout, /matched: the rule for the address without its \+detail/);
    assert.match(explained.stdout, /forward to me2@dest\.test \(else me@dest\.test\)/);
    const refused = await mailroute(h, "route", "nobody@explain.example");
    assert.match(refused.stdout, /refused at RCPT TO with "550 5\.1\.1 /);
    const json = JSON.parse((await mailroute(h, "route", "sales@explain.example", "--json")).stdout) as { decision: { kind: string } };
    assert.equal(json.decision.kind, "route");
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
  });

  it("sends a test message and shows it in the activity log", async () => {
    await mailroute(h, "domain", "add", "send.example");
    await mailroute(h, "address", "add", "inbox@dest.test", "--verified");
    await mailroute(h, "rule", "add", "test@send.example", "--forward", "inbox@dest.test");
    await h.reload();
    const sent = await mailroute(h, "send", "--to", "test@send.example", "--from", "me@origin.test", "--server", `127.0.0.1:${h.port}`, "--subject", "walkthrough");
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /server replied: 250 2\.0\.0 Ok: queued as \S+, delivered to 1 destination/);
    assert.equal(h.sinks["dest.test"]!.messagesFor("inbox@dest.test").length, 1);
    const activity = await mailroute(h, "activity", "--limit", "50");
    assert.match(activity.stdout, /me@origin\.test\s+test@send\.example\s+forward\s+forwarded\s+(none|pass|fail|softfail|neutral|temperror|permerror)\s+\S+\s+\S+\s+[\d.]+\s+250 /, "auth results and spam score are columns");
    assert.match(activity.stdout, /sender@origin\.test\s+hello@live\.example\s+refused\s+rejected\s+-\s+-\s+-\s+-\s+550 5\.1\.1/, "refusals are in the activity log too");
    const filtered = await mailroute(h, "activity", "--outcome", "forwarded", "--to", "TEST@send.example", "--since", "2000-01-01T00:00:00Z");
    assert.match(filtered.stdout, /test@send\.example/);
    assert.doesNotMatch(filtered.stdout, /hello@live\.example/);
    const none = await mailroute(h, "activity", "--from", "nobody@nowhere.test");
    assert.match(none.stdout, /no messages yet/);
  });

  it("fails with a message that says what to do", async () => {
    const unknownDomain = await mailroute(h, "rule", "add", "x@unknown.example", "--drop");
    assert.equal(unknownDomain.code, 1);
    assert.match(unknownDomain.stderr, /unknown\.example is not a domain of this account; add it first with "mailroute domain add unknown\.example"/);
    const badDestination = await mailroute(h, "rule", "add", "bad@send.example", "--forward", "bob@");
    assert.equal(badDestination.code, 1);
    assert.match(badDestination.stderr, /destination "bob@" is not an email address/);
    const noAction = await mailroute(h, "rule", "add", "bad@send.example");
    assert.equal(noAction.code, 2);
    assert.match(noAction.stderr, /choose exactly one action/);
    const unknownCommand = await mailroute(h, "frobnicate");
    assert.equal(unknownCommand.code, 2);
    const refusedSend = await mailroute(h, "send", "--to", "nobody@send.example", "--server", `127.0.0.1:${h.port}`);
    assert.equal(refusedSend.code, 1);
    assert.match(refusedSend.stderr, /550 5\.1\.1/);
    assert.match(refusedSend.stderr, /mailroute route nobody@send\.example/);
  });

  it("manages accounts and tokens whose value works once against the API, and shows the audit log", async () => {
    const added = await mailroute(h, "account", "add", "Family", "--id", "family", "--json");
    assert.equal(added.code, 0, added.stderr);
    assert.equal((JSON.parse(added.stdout) as { id: string }).id, "family");
    assert.match((await mailroute(h, "account", "list")).stdout, /family\s+Family/);
    const created = await mailroute(h, "token", "create", "--account", "family", "--name", "laptop", "--permission", "Zone Read", "--permission", "Email Routing Rules Write");
    assert.equal(created.code, 0, created.stderr);
    const value = /mrt_[0-9a-f]{32}[A-Za-z0-9_-]{43}/.exec(created.stdout)?.[0];
    assert.ok(value !== undefined, created.stdout);
    const verify = await fetch(`http://127.0.0.1:${h.mailroute.http.port}/client/v4/accounts/family/tokens/verify`, { headers: { authorization: `Bearer ${value}` } });
    assert.equal(verify.status, 200);
    const listed = await mailroute(h, "token", "list", "--account", "family");
    assert.match(listed.stdout, /laptop\s+active/);
    assert.ok(!listed.stdout.includes(value), "the value is never shown again");
    const id = /created token ([0-9a-f]{32})/.exec(created.stdout)![1]!;
    assert.equal((await mailroute(h, "token", "revoke", id, "--account", "family")).code, 0);
    const refused = await fetch(`http://127.0.0.1:${h.mailroute.http.port}/client/v4/accounts/family/tokens/verify`, { headers: { authorization: `Bearer ${value}` } });
    assert.equal(refused.status, 401, "a revoked token stops working at once");
    const audit = await mailroute(h, "audit", "--account", "family");
    assert.match(audit.stdout, /mailroute CLI\s+token\.create/);
    assert.match(audit.stdout, /token\.delete/);
    const missing = await mailroute(h, "token", "create", "--name", "x", "--permission", "Zone Read");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--account is required/);
  });

  it("sends a verification link for an address added without --verified, from the running server", async () => {
    const added = await mailroute(h, "address", "add", "fresh@dest.test");
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /the running server sends fresh@dest\.test a verification link/);
    const sink = h.sinks["dest.test"]!;
    await eventually(async () => sink.messagesFor("fresh@dest.test").length === 1, 10_000);
    assert.match(sink.messagesFor("fresh@dest.test")[0]!.text, /^Subject: Verify fresh@dest\.test as a forwarding destination/m);
  });
});
