import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_AUTH_POLICY, decideAuthPolicy, type AuthFacts, type AuthPolicy } from "../../src/inbound/auth-policy.ts";

const AUTHENTIC: AuthFacts = {
  spf: "pass",
  dkim: "pass",
  dmarc: "pass",
  dmarcPolicy: "reject",
  headerFrom: "sender.example",
  spfAligned: true,
  dkimAligned: true,
};
// a message whose SPF and DKIM pass for someone else's domain: DMARC fails
const UNALIGNED: AuthFacts = { ...AUTHENTIC, dmarc: "fail", spfAligned: false, dkimAligned: false };
const UNAUTHENTICATED: AuthFacts = { ...AUTHENTIC, spf: "fail", dkim: "none", dmarc: "none", dmarcPolicy: null, spfAligned: false, dkimAligned: false };

type Expected = { verdict: string; reply?: string; reason?: string };
const cases: [string, AuthFacts, Partial<AuthPolicy>, Expected][] = [
  ["accepts mail that passes everything", AUTHENTIC, {}, { verdict: "accept" }],
  ["refuses a DMARC failure under p=reject", UNALIGNED, {}, { verdict: "reject", reply: "DMARC_REJECT", reason: "dmarc-reject" }],
  ["marks instead when the zone does not enforce DMARC", UNALIGNED, { enforceDmarc: false }, { verdict: "accept-marked", reason: "dmarc-reject-not-enforced" }],
  ["accepts and marks a p=quarantine failure", { ...UNALIGNED, dmarcPolicy: "quarantine" }, {}, { verdict: "accept-marked", reason: "dmarc-quarantine" }],
  ["refuses a p=quarantine failure when the zone says so", { ...UNALIGNED, dmarcPolicy: "quarantine" }, { quarantineAction: "reject" }, { verdict: "reject", reply: "DMARC_REJECT" }],
  ["only marks p=quarantine when DMARC is not enforced at all", { ...UNALIGNED, dmarcPolicy: "quarantine" }, { quarantineAction: "reject", enforceDmarc: false }, { verdict: "accept-marked", reason: "dmarc-quarantine" }],
  ["accepts a p=none failure unmarked", { ...UNALIGNED, dmarcPolicy: "none" }, {}, { verdict: "accept" }],
  ["defers a p=reject failure when a DKIM key lookup failed", { ...UNALIGNED, dkim: "temperror", spf: "fail" }, {}, { verdict: "tempfail", reply: "AUTH_TEMPFAIL", reason: "dmarc-unverifiable" }],
  ["defers a p=reject failure when SPF hit a DNS error", { ...UNALIGNED, spf: "temperror" }, {}, { verdict: "tempfail", reason: "dmarc-unverifiable" }],
  ["defers when the DMARC record could not be fetched and nothing aligned passed", { ...UNALIGNED, dmarc: "temperror", dmarcPolicy: null }, {}, { verdict: "tempfail", reason: "dmarc-temperror" }],
  ["accepts on a DMARC lookup error when an identical-domain identifier passed", { ...AUTHENTIC, dmarc: "temperror", dmarcPolicy: null, dkimAligned: false }, {}, { verdict: "accept" }],
  ["ignores a DMARC lookup error when the zone does not enforce DMARC", { ...UNALIGNED, dmarc: "temperror", dmarcPolicy: null }, { enforceDmarc: false }, { verdict: "accept" }],
  ["marks a message DMARC could not evaluate (no single From domain)", { ...AUTHENTIC, dmarc: "permerror", dmarcPolicy: null, headerFrom: null }, {}, { verdict: "accept-marked", reason: "dmarc-permerror" }],
  ["refuses mail that passes neither SPF nor DKIM", UNAUTHENTICATED, {}, { verdict: "reject", reply: "AUTH_REQUIRED", reason: "no-spf-or-dkim-pass" }],
  ["accepts it when the zone does not require SPF or DKIM", UNAUTHENTICATED, { requireSpfOrDkim: false }, { verdict: "accept" }],
  ["counts softfail and a broken signature as not passing", { ...UNAUTHENTICATED, spf: "softfail", dkim: "fail" }, {}, { verdict: "reject", reply: "AUTH_REQUIRED" }],
  ["accepts a valid signature from any domain as authentication", { ...UNAUTHENTICATED, dkim: "pass" }, {}, { verdict: "accept" }],
  ["defers instead when SPF could not be checked", { ...UNAUTHENTICATED, spf: "temperror" }, {}, { verdict: "tempfail", reply: "AUTH_TEMPFAIL", reason: "spf-dkim-temperror" }],
  ["defers instead when a DKIM key could not be fetched", { ...UNAUTHENTICATED, dkim: "temperror" }, {}, { verdict: "tempfail", reason: "spf-dkim-temperror" }],
  ["reports the domain owner's p=reject first when both rules refuse", { ...UNAUTHENTICATED, dmarc: "fail", dmarcPolicy: "reject" }, {}, { verdict: "reject", reply: "DMARC_REJECT" }],
  ["refuses a certain AUTH_REQUIRED even when DMARC had a DNS error", { ...UNAUTHENTICATED, dmarc: "temperror" }, {}, { verdict: "reject", reply: "AUTH_REQUIRED" }],
  ["refuses rather than marks a p=quarantine failure that passed nothing", { ...UNAUTHENTICATED, dmarc: "fail", dmarcPolicy: "quarantine" }, {}, { verdict: "reject", reply: "AUTH_REQUIRED" }],
  ["with every rule relaxed, accepts what passed nothing", UNAUTHENTICATED, { enforceDmarc: false, requireSpfOrDkim: false }, { verdict: "accept" }],
];

describe("deciding what authentication results mean for a message", () => {
  for (const [name, facts, overrides, expected] of cases) {
    it(name, () => {
      const decision = decideAuthPolicy(facts, { ...DEFAULT_AUTH_POLICY, ...overrides });
      const seen: Expected = { verdict: decision.verdict };
      if ("reply" in decision && expected.reply !== undefined) seen.reply = decision.reply;
      if ("reason" in decision && expected.reason !== undefined) seen.reason = decision.reason;
      assert.deepEqual(seen, expected);
    });
  }

  it("defaults to enforcing everything, with p=quarantine accepted and marked", () => {
    assert.deepEqual({ ...DEFAULT_AUTH_POLICY }, { enforceDmarc: true, requireSpfOrDkim: true, quarantineAction: "accept" });
  });

  it("gives the reply template its values: the From domain and the SPF and DKIM results", () => {
    const decision = decideAuthPolicy(UNALIGNED, DEFAULT_AUTH_POLICY);
    assert.ok(decision.verdict === "reject");
    assert.deepEqual({ ...decision.values }, { domain: "sender.example", spf: "pass", dkim: "pass", detail: "DMARC policy reject" });

    const anonymous = decideAuthPolicy({ ...UNAUTHENTICATED, headerFrom: null }, DEFAULT_AUTH_POLICY);
    assert.ok(anonymous.verdict === "reject");
    assert.equal(anonymous.values.domain, "unknown");
  });
});
