/**
 * What to do with a message, given its authentication results and the zone's policy: the
 * enforcement rules of issue 3 and Cloudflare's postmaster page, as one pure function.
 *
 * - DMARC fails and the domain asks for p=reject → refuse (550 5.7.1, RFC 9989 §5.3.4 lets a
 *   receiver reject outright). p=quarantine → accept and mark, or refuse if the zone says so.
 * - Passes neither SPF nor DKIM → refuse (550 5.7.26, RFC 7372 §3.3 "multiple authentication
 *   checks failed"), Cloudflare's mail authentication requirement.
 * - A DNS temporary error that could change the outcome → 451 4.7.x, never a permanent
 *   refusal (RFC 7208 §2.6.6, RFC 6376 §6.1.2, RFC 9989 §4.10): the sender retries and a
 *   later attempt can pass.
 * Each rule can be relaxed per zone. A refusal is returned only when no temperror could have
 * turned it into a pass, so a certain refusal outranks a tempfail from another rule.
 */
import type { InboundAuthResult } from "./authenticate-message.ts";

export interface AuthPolicy {
  /** Refuse DMARC failures whose domain publishes p=reject (and p=quarantine with quarantineAction "reject"). */
  enforceDmarc: boolean;
  /** Refuse mail that passes neither SPF nor DKIM. */
  requireSpfOrDkim: boolean;
  /** What a DMARC p=quarantine failure gets: accepted and marked, or refused like p=reject. */
  quarantineAction: "accept" | "reject";
}

export const DEFAULT_AUTH_POLICY: AuthPolicy = Object.freeze({ enforceDmarc: true, requireSpfOrDkim: true, quarantineAction: "accept" });

/** Placeholder values for the catalogue templates: domain (header From), spf, dkim, detail. */
export type AuthReplyValues = Readonly<{ domain: string; spf: string; dkim: string; detail: string }>;

export type AuthDecision =
  | { verdict: "accept" }
  /** Deliver, but the forwarded copy should say why it is suspect (reason is a log/header token). */
  | { verdict: "accept-marked"; reason: AuthReason }
  | { verdict: "reject"; reply: "DMARC_REJECT" | "AUTH_REQUIRED"; reason: AuthReason; values: AuthReplyValues }
  | { verdict: "tempfail"; reply: "AUTH_TEMPFAIL"; reason: AuthReason; values: AuthReplyValues };

export type AuthReason =
  | "dmarc-reject"
  | "dmarc-quarantine"
  | "dmarc-reject-not-enforced"
  | "dmarc-permerror"
  | "dmarc-temperror"
  | "dmarc-unverifiable"
  | "no-spf-or-dkim-pass"
  | "spf-dkim-temperror";

export type AuthFacts = Pick<InboundAuthResult, "spf" | "dkim" | "dmarc" | "dmarcPolicy" | "headerFrom" | "spfAligned" | "dkimAligned">;

const ACCEPT: AuthDecision = Object.freeze({ verdict: "accept" });
// a certain refusal wins over "try again", which wins over marking
const SEVERITY: Readonly<Record<AuthDecision["verdict"], number>> = { reject: 3, tempfail: 2, "accept-marked": 1, accept: 0 };

export function decideAuthPolicy(result: AuthFacts, policy: AuthPolicy): AuthDecision {
  // in this order, so that of two refusals the DMARC one (the domain owner's own word) is reported
  const decisions = [dmarcRule(result, policy), authenticationRule(result, policy)];
  let chosen = ACCEPT;
  for (const decision of decisions) {
    if (SEVERITY[decision.verdict] > SEVERITY[chosen.verdict]) chosen = decision;
  }
  return chosen;
}

/** RFC 9989 §5.3.4: the receiver applies the domain's policy to a failing message. */
function dmarcRule(result: AuthFacts, policy: AuthPolicy): AuthDecision {
  switch (result.dmarc) {
    case "fail": {
      const refused = result.dmarcPolicy === "reject" || (result.dmarcPolicy === "quarantine" && policy.quarantineAction === "reject");
      if (refused && policy.enforceDmarc) {
        // a signature or SPF record we could not fetch might have aligned and passed
        if (couldStillPass(result)) return tempfail("dmarc-unverifiable", result, "DMARC could not be fully evaluated");
        return { verdict: "reject", reply: "DMARC_REJECT", reason: "dmarc-reject", values: values(result, `DMARC policy ${result.dmarcPolicy}`) };
      }
      if (result.dmarcPolicy === "quarantine") return { verdict: "accept-marked", reason: "dmarc-quarantine" };
      // the operator turned enforcement off; the domain owner still asked for more than a mark
      if (result.dmarcPolicy === "reject") return { verdict: "accept-marked", reason: "dmarc-reject-not-enforced" };
      // p=none: the domain is only monitoring (RFC 9989 §4.7), so nothing to act on
      return ACCEPT;
    }
    case "temperror":
      // an aligned pass makes DMARC pass whatever the record says; otherwise the unknown
      // record might say reject, and only a retry can tell
      if (policy.enforceDmarc && !result.spfAligned && !result.dkimAligned) {
        return tempfail("dmarc-temperror", result, "DNS error while looking up the DMARC policy");
      }
      return ACCEPT;
    case "permerror":
      // RFC 9989 §11.5: no single author domain (no From, or several) is suspect in itself
      return { verdict: "accept-marked", reason: "dmarc-permerror" };
    default:
      return ACCEPT;
  }
}

/** Cloudflare's requirement: pass SPF or carry a valid DKIM signature (alignment not needed). */
function authenticationRule(result: AuthFacts, policy: AuthPolicy): AuthDecision {
  if (!policy.requireSpfOrDkim || result.spf === "pass" || result.dkim === "pass") return ACCEPT;
  if (couldStillPass(result)) return tempfail("spf-dkim-temperror", result, "DNS error while checking SPF or DKIM");
  return { verdict: "reject", reply: "AUTH_REQUIRED", reason: "no-spf-or-dkim-pass", values: values(result, "no SPF or DKIM pass") };
}

function couldStillPass(result: AuthFacts): boolean {
  return result.spf === "temperror" || result.dkim === "temperror";
}

function tempfail(reason: AuthReason, result: AuthFacts, detail: string): AuthDecision {
  return { verdict: "tempfail", reply: "AUTH_TEMPFAIL", reason, values: values(result, detail) };
}

function values(result: AuthFacts, detail: string): AuthReplyValues {
  return Object.freeze({ domain: result.headerFrom ?? "unknown", spf: result.spf, dkim: result.dkim, detail });
}
