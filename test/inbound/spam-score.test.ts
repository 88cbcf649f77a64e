import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_SPAM_SCORE, SPAM_RULES, scoreMessage, spamHeaders, type SpamSignals } from "../../src/inbound/spam-score.ts";

const RECEIVED_AT = new Date("2026-03-02T10:00:00Z");

const CLEAN_HEADERS: readonly string[] = [
  "From: Alice Example <alice@sender.example>",
  "To: hello@routed.example",
  "Subject: Lunch on Thursday?",
  "Date: Mon, 02 Mar 2026 09:58:00 +0000",
  "Message-ID: <20260302095800.1234@sender.example>",
  "MIME-Version: 1.0",
];

function head(lines: readonly string[]): Buffer {
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\nHi Bob,\r\nFrom: this line is body text, not a header\r\n`);
}

/** The clean header lines with `name` removed (all occurrences) and `extra` appended. */
function headers(options: { without?: string; replace?: [string, string]; extra?: readonly string[] } = {}): Buffer {
  let lines = CLEAN_HEADERS.filter((line) => options.without === undefined || !line.toLowerCase().startsWith(`${options.without.toLowerCase()}:`));
  if (options.replace) {
    const [name, line] = options.replace;
    lines = lines.map((existing) => (existing.toLowerCase().startsWith(`${name.toLowerCase()}:`) ? line : existing));
  }
  return head([...lines, ...(options.extra ?? [])]);
}

const CLEAN: SpamSignals = {
  auth: { spf: "pass", dkim: "pass", dmarc: "pass" },
  dnsblListed: false,
  reverseDns: "confirmed",
  head: headers(),
  receivedAt: RECEIVED_AT,
};

// one case per row of the table, each changing the clean message in exactly one way
const signalCases: [string, Partial<SpamSignals>][] = [
  ["dnsbl-listed", { dnsblListed: true }],
  ["rdns-missing", { reverseDns: "missing" }],
  ["rdns-mismatch", { reverseDns: "mismatch" }],
  ["dmarc-fail", { auth: { spf: "pass", dkim: "pass", dmarc: "fail" } }],
  ["spf-fail", { auth: { spf: "fail", dkim: "pass", dmarc: "pass" } }],
  ["spf-softfail", { auth: { spf: "softfail", dkim: "pass", dmarc: "pass" } }],
  ["dkim-fail", { auth: { spf: "pass", dkim: "fail", dmarc: "pass" } }],
  ["no-auth-pass", { auth: { spf: "neutral", dkim: "none", dmarc: "none" } }],
  ["from-missing", { head: headers({ without: "from" }) }],
  ["from-multiple", { head: headers({ extra: ["From: Mallory <mallory@sender.example>"] }) }],
  ["from-no-address", { head: headers({ replace: ["from", "From: Undisclosed sender"] }) }],
  ["from-display-spoof", { head: headers({ replace: ["from", 'From: "support@bank.example" <alice@sender.example>'] }) }],
  ["date-missing", { head: headers({ without: "date" }) }],
  ["date-invalid", { head: headers({ replace: ["date", "Date: sometime last week"] }) }],
  ["date-future", { head: headers({ replace: ["date", "Date: Thu, 05 Mar 2026 09:58:00 +0000"] }) }],
  ["message-id-missing", { head: headers({ without: "message-id" }) }],
  ["message-id-malformed", { head: headers({ replace: ["message-id", "Message-ID: 1234567"] }) }],
  ["duplicate-field", { head: headers({ extra: ["Subject: a second subject"] }) }],
  ["malformed-header", { head: headers({ extra: ["this line is not a header field"] }) }],
  ["subject-all-caps", { head: headers({ replace: ["subject", "Subject: YOU HAVE WON A PRIZE"] }) }],
  ["subject-exclamations", { head: headers({ replace: ["subject", "Subject: Act now!!! Limited offer"] }) }],
];

function weightOf(id: string): number {
  const row = SPAM_RULES.find((candidate) => candidate.id === id);
  assert.ok(row, `rule ${id} exists`);
  return row.weight;
}

describe("spam score signals", () => {
  it("scores a clean, authenticated message from a well-known client 0 with no reasons", () => {
    assert.deepEqual(scoreMessage(CLEAN), { score: 0, reasons: [] });
  });

  for (const [id, change] of signalCases) {
    it(`adds ${id} (${SPAM_RULES.find((row) => row.id === id)?.description ?? "?"}) and its weight alone`, () => {
      assert.deepEqual(scoreMessage({ ...CLEAN, ...change }), { score: weightOf(id), reasons: [id] });
    });
  }

  it("has a test case for every row of the table, and every weight between 0 and 5", () => {
    assert.deepEqual(signalCases.map(([id]) => id).sort(), SPAM_RULES.map((row) => row.id).sort());
    for (const row of SPAM_RULES) assert.ok(row.weight > 0 && row.weight <= MAX_SPAM_SCORE, `${row.id} weight ${row.weight}`);
  });

  it("adds nothing for what is unknown: no authentication run, reverse DNS lookup failed", () => {
    assert.deepEqual(scoreMessage({ ...CLEAN, auth: null, reverseDns: "unknown" }), { score: 0, reasons: [] });
  });

  it("does not mistake ordinary headers for suspicious ones", () => {
    const ordinary = headers({
      replace: ["subject", "Subject: RE: FYI"],
      extra: ["X-Folded: first part", "\tsecond part", "Comments : obsolete space before the colon", "Received: from a by b; Mon, 02 Mar 2026 09:58:00 +0000"],
    });
    const encodedCaps = headers({ replace: ["subject", "Subject: =?UTF-8?B?SEVMTE8gV09STEQgVEhJUyBJUw==?= hi"] });
    const zoneComment = headers({ replace: ["date", "Date: Mon, 2 Mar 2026 09:58:00 +0000 (UTC)"] });

    for (const sample of [ordinary, encodedCaps, zoneComment]) assert.deepEqual(scoreMessage({ ...CLEAN, head: sample }), { score: 0, reasons: [] });
  });

  it("sums the weights of every signal that applies, in table order, to one decimal", () => {
    const result = scoreMessage({ ...CLEAN, head: headers({ replace: ["subject", "Subject: Act now!!! Limited offer"], without: "message-id" }) });

    assert.deepEqual(result.reasons, ["message-id-missing", "subject-exclamations"]);
    assert.equal(result.score, 0.8);
  });

  it("clamps the score at 5", () => {
    const result = scoreMessage({
      auth: { spf: "fail", dkim: "fail", dmarc: "fail" },
      dnsblListed: true,
      reverseDns: "missing",
      head: head(["Subject: FREE MONEY FOR YOU!!!", "garbage line"]),
      receivedAt: RECEIVED_AT,
    });

    assert.equal(result.score, MAX_SPAM_SCORE);
    assert.ok(result.reasons.length > 5);
  });
});

describe("spam score headers", () => {
  it("formats the score with one decimal and the reasons as a comma-separated list", () => {
    assert.deepEqual(spamHeaders({ score: 2.5, reasons: ["dmarc-fail", "rdns-missing"] }), [
      "X-Mailroute-Spam-Score: 2.5",
      "X-Mailroute-Spam-Reasons: dmarc-fail, rdns-missing",
    ]);
    assert.deepEqual(spamHeaders({ score: 0, reasons: [] }), ["X-Mailroute-Spam-Score: 0.0", "X-Mailroute-Spam-Reasons: none"]);
    assert.deepEqual(spamHeaders(scoreMessage({ ...CLEAN, dnsblListed: true })), ["X-Mailroute-Spam-Score: 3.0", "X-Mailroute-Spam-Reasons: dnsbl-listed"]);
  });

  it("cannot be made to break a line or leave the 0-5 range, whatever it is handed", () => {
    const lines = spamHeaders({ score: Number.NaN, reasons: ["dnsbl-listed\r\nBcc: victim@elsewhere.example", "x\ny: z", "\u0000"] });

    for (const line of lines) assert.ok(!/[\r\n\u0000]/.test(line), JSON.stringify(line));
    assert.deepEqual(lines, ["X-Mailroute-Spam-Score: 0.0", "X-Mailroute-Spam-Reasons: dnsbl-listedbccvictimelsewhereexample, xyz"]);
    assert.equal(spamHeaders({ score: 99, reasons: [] })[0], "X-Mailroute-Spam-Score: 5.0");
    assert.equal(spamHeaders({ score: -3, reasons: [] })[0], "X-Mailroute-Spam-Score: 0.0");
  });

  it("keeps the reasons line within RFC 5322's 998 characters", () => {
    const [, reasons] = spamHeaders({ score: 5, reasons: Array.from({ length: 200 }, (_, i) => `reason-${i}`) });

    assert.ok(reasons.length < 998, `${reasons.length} characters`);
    assert.match(reasons, /, more$/);
  });
});
