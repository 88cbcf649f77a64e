import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkReply, checkSendEmail, COMPOSED_MAIL_REFUSALS } from "../../src/workers/composed-mail-rules.ts";
import { checkKvKey, resolveKvList, resolveKvPut } from "../../src/workers/kv-rules.ts";
import { WorkerCallError } from "../../src/workers/worker-types.ts";
import { rawMessage } from "./fake-host.ts";

function refusal(text: string, name: "Error" | "TypeError" = "Error") {
  return (error: unknown) => error instanceof WorkerCallError && error.message === text && error.errorName === name;
}

describe("KV rules", () => {
  const now = 1_800_000_000;

  it("turns expirationTtl into an absolute expiration and keeps metadata", () => {
    assert.deepEqual(resolveKvPut({ key: "k", expirationTtl: 120, metadata: { a: 1 } }, 3, now), { expiration: now + 120, metadata: { a: 1 } });
    assert.deepEqual(resolveKvPut({ key: "k", expiration: now + 60 }, 3, now), { expiration: now + 60 });
    assert.deepEqual(resolveKvPut({ key: "k" }, 3, now), {});
  });

  it("refuses what Cloudflare KV refuses, in its words", () => {
    assert.throws(() => checkKvKey("GET", ""), refusal("Key name cannot be empty.", "TypeError"));
    assert.throws(() => checkKvKey("DELETE", ".."), refusal('KV DELETE failed: 400 Illegal key name "..". Please use a different name.'));
    assert.throws(() => resolveKvPut({ key: "k", expirationTtl: 0 }, 1, now), refusal("KV PUT failed: 400 Invalid expiration_ttl of 0. Please specify integer greater than 0."));
    assert.throws(() => resolveKvPut({ key: "k", expiration: now }, 1, now), refusal(`KV PUT failed: 400 Invalid expiration of ${now}. Please specify integer greater than the current number of seconds since the UNIX epoch.`));
    assert.throws(() => resolveKvPut({ key: "k", expiration: now + 10 }, 1, now), refusal(`KV PUT failed: 400 Invalid expiration of ${now + 10}. Expiration times must be at least 60 seconds in the future.`));
    assert.throws(() => resolveKvPut({ key: "k", metadata: "x".repeat(1100) }, 1, now), refusal("KV PUT failed: 413 Metadata length of 1102 exceeds limit of 1024."));
    assert.throws(() => resolveKvPut({ key: "k" }, 26 * 1024 * 1024, now), refusal("KV PUT failed: 413 Value length of 27262976 exceeds limit of 26214400."));
    assert.throws(() => resolveKvList({ limit: 1001 }), refusal("KV GET failed: 400 Invalid key_count_limit of 1001. Please specify an integer less than 1000."));
  });

  it("lists with Cloudflare's defaults", () => {
    assert.deepEqual(resolveKvList({}), { limit: 1000 });
    assert.deepEqual(resolveKvList({ limit: 0, prefix: "user:", cursor: "" }), { limit: 1000, prefix: "user:" });
    assert.deepEqual(resolveKvList({ limit: 10, cursor: "abc" }), { limit: 10, cursor: "abc" });
  });
});

describe("reply rules", () => {
  const incoming = {
    from: "alice@sender.example",
    to: "support+help@example.com",
    raw: rawMessage({ From: "alice@sender.example", "Message-ID": "<in-1@sender.example>", References: "<root@sender.example>", "In-Reply-To": "<root@sender.example>" }),
  };
  const reply = (headers: Record<string, string>, from = "support@example.com", to: string | null = "alice@sender.example") => ({
    from,
    to,
    raw: rawMessage({ From: `Support <${from}>`, "Message-ID": "<r-1@example.com>", "In-Reply-To": "<in-1@sender.example>", ...headers }),
  });

  it("prepends the thread's References when the reply has none", () => {
    const raw = checkReply(incoming, reply({}), false);
    assert.ok(raw.toString().startsWith("References: <in-1@sender.example> <root@sender.example>\r\nFrom: Support"));
  });

  it("keeps a References header that continues the thread, and refuses one that does not", () => {
    const good = reply({ References: "<root@sender.example> <in-1@sender.example>" });
    assert.equal(checkReply(incoming, good, false), good.raw);
    assert.throws(() => checkReply(incoming, reply({ References: "<other@x>" }), false), refusal(COMPOSED_MAIL_REFUSALS.badReferences));
  });

  it("refuses each broken constraint with its own text", () => {
    assert.throws(() => checkReply(incoming, reply({}), true), refusal("message already replied"));
    assert.throws(() => checkReply(incoming, reply({}, "support@example.com", "bob@sender.example"), false), refusal("reply recipient does not match original sender"));
    assert.throws(() => checkReply(incoming, reply({}, "support@other.example"), false), refusal("reply sender domain does not match receiving domain"));
    assert.throws(() => checkReply(incoming, reply({ "In-Reply-To": "<nope@x>" }), false), refusal("In-Reply-To does not match original Message-ID"));
    assert.throws(() => checkReply(incoming, reply({ Received: "from a by b" }), false), refusal("invalid headers set"));
    const unthreaded = { from: "support@example.com", to: "alice@sender.example", raw: rawMessage({ From: "support@example.com", "Message-ID": "<r@example.com>" }) };
    assert.throws(() => checkReply(incoming, unthreaded, false), refusal("no In-Reply-To header found in reply message"));
  });

  it("never answers automatic mail, half-threaded mail, or a thread of 100 references", () => {
    const base = { From: "alice@sender.example", "Message-ID": "<in-1@sender.example>" };
    const notReplyable = refusal("Original email is not replyable");
    const cases: Record<string, string>[] = [
      { "Auto-Submitted": "auto-generated" },
      { "X-Auto-Response-Suppress": "OOF" },
      { "In-Reply-To": "<root@sender.example>" },
      { References: "<root@sender.example>" },
      { "In-Reply-To": "<r@x>", References: Array.from({ length: 100 }, (_, i) => `<r${i}@x>`).join(" ") },
    ];
    for (const extra of cases) {
      assert.throws(() => checkReply({ ...incoming, raw: rawMessage({ ...base, ...extra }) }, reply({}), false), notReplyable, JSON.stringify(extra));
    }
    assert.doesNotThrow(() => checkReply({ ...incoming, raw: rawMessage({ ...base, "Auto-Submitted": "no" }) }, reply({}), false));
  });
});

describe("send_email rules", () => {
  const message = (from: string, to: string | null, headers: Record<string, string> = {}) => ({
    from,
    to,
    raw: rawMessage({ From: from, To: to ?? "ops@dest.example", "Message-ID": "<s@example.com>", ...headers }),
  });

  it("sends to the binding's destination_address when the message names none", () => {
    assert.equal(checkSendEmail({ name: "B", destinationAddress: "ops@dest.example" }, message("bot@example.com", null)), "ops@dest.example");
    assert.throws(() => checkSendEmail({ name: "B" }, message("bot@example.com", null)), refusal("destination address is invalid"));
  });

  it("checks the composed message like a reply", () => {
    assert.throws(() => checkSendEmail({ name: "B" }, { ...message("bot@example.com", "a@dest.example"), from: "other@example.com" }), refusal("From: header does not match mail from"));
    const noId = { from: "bot@example.com", to: "a@dest.example", raw: rawMessage({ From: "bot@example.com" }) };
    assert.throws(() => checkSendEmail({ name: "B" }, noId), refusal("invalid message-id"));
  });
});
