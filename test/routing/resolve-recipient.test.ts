/**
 * resolveRecipient and the routing table it reads (DESIGN §3 "Precedence"): which rule an
 * envelope recipient reaches, and every way it is refused instead.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDestinationExpression } from "../../src/routing/destination-expression.ts";
import {
  buildRoutingTable,
  EMPTY_ROUTING_TABLE,
  localKey,
  type RouteEntry,
  type RoutingTable,
  type RuleAction,
  type RuleInput,
  type ZoneInput,
} from "../../src/routing/routing-table.ts";
import {
  planKey,
  resolveRecipient,
  unverifiedDestinations,
  type RefusalReason,
  type RoutingDecision,
} from "../../src/routing/resolve-recipient.ts";

// ── fixtures ────────────────────────────────────────────────────────────────

function forward(expression: string): RuleAction {
  return { type: "forward", chains: parseDestinationExpression(expression) };
}

function zone(name: string, options: Partial<Omit<ZoneInput, "name">> = {}): ZoneInput {
  return { name, enabled: true, supportSubaddress: true, dotInsensitive: false, catchAll: null, ...options };
}

function catchAll(action: RuleAction, enabled = true, id = "catch-all"): RouteEntry {
  return { id, name: "catch-all", enabled, action };
}

/** A rule for `address` (local@zone), named and identified by that address. */
function rule(address: string, action: RuleAction = forward("inbox@dest.test"), enabled = true): RuleInput {
  const at = address.lastIndexOf("@");
  return { id: `rule:${address}`, name: address, enabled, zone: address.slice(at + 1), local: address.slice(0, at), action };
}

const VERIFIED = ["inbox@dest.test", "base@dest.test", "catch@dest.test", "a@x.net", "a@y.net", "b@z.net", "kontakt@xn--bcher-kva.de"];

function table(zones: readonly ZoneInput[], rules: readonly RuleInput[] = [], verified: readonly string[] = VERIFIED): RoutingTable {
  return buildRoutingTable({ zones, rules, verifiedDestinations: verified });
}

type Summary =
  | { route: "exact" | "subaddress-base" | "catch-all"; ruleId: string; address: string; zone: string }
  | { refuse: RefusalReason; domain: string | null };

/** The parts of a decision each test asserts on, so a failure diff reads at a glance. */
function summary(decision: RoutingDecision): Summary {
  return decision.kind === "route"
    ? { route: decision.matched, ruleId: decision.ruleId, address: decision.address, zone: decision.zone }
    : { refuse: decision.reason, domain: decision.domain };
}

function routed(decision: RoutingDecision): RoutingDecision & { kind: "route" } {
  if (decision.kind !== "route") assert.fail(`expected a route, got refusal ${decision.reason}: ${decision.detail}`);
  return decision;
}

function refused(decision: RoutingDecision): RoutingDecision & { kind: "refuse" } {
  if (decision.kind !== "refuse") assert.fail(`expected a refusal, got route to ${decision.ruleId}`);
  return decision;
}

// The configuration most precedence tests run against.
const PRECEDENCE = table(
  [
    zone("example.com", { catchAll: catchAll(forward("catch@dest.test")) }),
    zone("nosub.example", { supportSubaddress: false, catchAll: catchAll(forward("catch@dest.test")) }),
    zone("nosub-nocatch.example", { supportSubaddress: false }),
    zone("nocatch.example"),
  ],
  [
    rule("user@example.com", forward("base@dest.test")),
    rule("user+exact@example.com", forward("inbox@dest.test")),
    rule("user@nosub.example", forward("base@dest.test")),
    rule("user@nosub-nocatch.example", forward("base@dest.test")),
    rule("user@nocatch.example", forward("base@dest.test")),
  ],
);

// ── precedence ──────────────────────────────────────────────────────────────

describe("resolveRecipient precedence (DESIGN §3)", () => {
  it("routes an address to its exact rule", () => {
    assert.deepEqual(summary(resolveRecipient("user@example.com", PRECEDENCE)), {
      route: "exact",
      ruleId: "rule:user@example.com",
      address: "user@example.com",
      zone: "example.com",
    });
  });

  it("prefers the exact rule for local+detail over the base rule", () => {
    assert.deepEqual(summary(resolveRecipient("user+exact@example.com", PRECEDENCE)), {
      route: "exact",
      ruleId: "rule:user+exact@example.com",
      address: "user+exact@example.com",
      zone: "example.com",
    });
  });

  it("routes user+tag to user's rule when the zone supports sub-addressing", () => {
    assert.deepEqual(summary(resolveRecipient("user+news@example.com", PRECEDENCE)), {
      route: "subaddress-base",
      ruleId: "rule:user@example.com",
      address: "user+news@example.com",
      zone: "example.com",
    });
  });

  it("prefers the base rule over the catch-all for user+tag", () => {
    const decision = routed(resolveRecipient("user+anything@example.com", PRECEDENCE));
    assert.equal(decision.matched, "subaddress-base");
  });

  it("sends user+tag to the catch-all, not user's rule, when sub-addressing is off", () => {
    assert.deepEqual(summary(resolveRecipient("user+news@nosub.example", PRECEDENCE)), {
      route: "catch-all",
      ruleId: "catch-all",
      address: "user+news@nosub.example",
      zone: "nosub.example",
    });
  });

  it("refuses user+tag as unknown when sub-addressing is off and there is no catch-all", () => {
    assert.deepEqual(summary(resolveRecipient("user+news@nosub-nocatch.example", PRECEDENCE)), {
      refuse: "unknown-recipient",
      domain: "nosub-nocatch.example",
    });
  });

  it("still routes the plain address to its rule when sub-addressing is off", () => {
    assert.equal(routed(resolveRecipient("user@nosub.example", PRECEDENCE)).matched, "exact");
  });

  it("still honours an exact rule for user+tag when sub-addressing is off", () => {
    const t = table([zone("nosub.example", { supportSubaddress: false })], [rule("user+tag@nosub.example")]);
    assert.equal(routed(resolveRecipient("user+tag@nosub.example", t)).ruleId, "rule:user+tag@nosub.example");
  });

  it("routes an unknown local part to the enabled catch-all", () => {
    assert.deepEqual(summary(resolveRecipient("nobody@example.com", PRECEDENCE)), {
      route: "catch-all",
      ruleId: "catch-all",
      address: "nobody@example.com",
      zone: "example.com",
    });
  });

  it("refuses an unknown local part with unknown-recipient when the zone has no catch-all", () => {
    const decision = refused(resolveRecipient("nobody@nocatch.example", PRECEDENCE));
    assert.equal(decision.reason, "unknown-recipient");
    assert.equal(decision.domain, "nocatch.example");
    assert.match(decision.detail, /nobody@nocatch\.example/);
  });

  it("refuses an unknown local part when the catch-all is disabled", () => {
    const t = table([zone("example.com", { catchAll: catchAll(forward("catch@dest.test"), false) })], [rule("user@example.com")]);
    assert.deepEqual(summary(resolveRecipient("nobody@example.com", t)), { refuse: "unknown-recipient", domain: "example.com" });
  });

  it("refuses as unknown (not inactive) when a disabled catch-all has unverified destinations", () => {
    const t = table([zone("example.com", { catchAll: catchAll(forward("unverified@dest.test"), false) })]);
    assert.deepEqual(summary(resolveRecipient("nobody@example.com", t)), { refuse: "unknown-recipient", domain: "example.com" });
  });

  it("falls through a disabled exact rule to the base rule", () => {
    const t = table([zone("example.com", { catchAll: catchAll(forward("catch@dest.test")) })], [rule("user@example.com"), rule("user+tag@example.com", forward("inbox@dest.test"), false)]);
    assert.deepEqual(summary(resolveRecipient("user+tag@example.com", t)), {
      route: "subaddress-base",
      ruleId: "rule:user@example.com",
      address: "user+tag@example.com",
      zone: "example.com",
    });
  });

  it("falls through a disabled exact rule to the catch-all when there is no base rule", () => {
    const t = table([zone("example.com", { catchAll: catchAll(forward("catch@dest.test")) })], [rule("user@example.com", forward("inbox@dest.test"), false)]);
    assert.equal(routed(resolveRecipient("user@example.com", t)).matched, "catch-all");
  });

  it("falls through a disabled base rule to the catch-all", () => {
    const t = table([zone("example.com", { catchAll: catchAll(forward("catch@dest.test")) })], [rule("user@example.com", forward("inbox@dest.test"), false)]);
    assert.equal(routed(resolveRecipient("user+tag@example.com", t)).matched, "catch-all");
  });

  it("refuses as unknown when the exact rule is disabled and there is no catch-all", () => {
    const t = table([zone("example.com")], [rule("user@example.com", forward("inbox@dest.test"), false)]);
    assert.deepEqual(summary(resolveRecipient("user@example.com", t)), { refuse: "unknown-recipient", domain: "example.com" });
  });

  it("refuses a disabled-everything address as unknown: disabled exact, disabled base, disabled catch-all", () => {
    const t = table(
      [zone("example.com", { catchAll: catchAll(forward("catch@dest.test"), false) })],
      [rule("user@example.com", forward("inbox@dest.test"), false), rule("user+tag@example.com", forward("inbox@dest.test"), false)],
    );
    assert.deepEqual(summary(resolveRecipient("user+tag@example.com", t)), { refuse: "unknown-recipient", domain: "example.com" });
  });
});

// ── verification ────────────────────────────────────────────────────────────

describe("resolveRecipient with unverified destinations", () => {
  const t = table(
    [zone("example.com", { catchAll: catchAll(forward("catch@dest.test")) })],
    [
      rule("pending@example.com", forward("unverified@dest.test")),
      rule("half@example.com", forward("inbox@dest.test, unverified@dest.test")),
      rule("backup@example.com", forward("inbox@dest.test:unverified-backup@dest.test")),
      rule("base@example.com", forward("unverified@dest.test")),
      rule("base+ok@example.com", forward("unverified@dest.test"), false),
    ],
  );

  it('refuses an inactive rule with "rule-inactive" instead of falling through to the catch-all', () => {
    const decision = refused(resolveRecipient("pending@example.com", t));
    assert.equal(decision.reason, "rule-inactive");
    assert.equal(decision.domain, "example.com");
    assert.match(decision.detail, /rule "pending@example\.com" is inactive: destination unverified@dest\.test not verified/);
  });

  it("treats a rule as inactive when one of several primaries is unverified, naming only that one", () => {
    const decision = refused(resolveRecipient("half@example.com", t));
    assert.equal(decision.reason, "rule-inactive");
    assert.match(decision.detail, /destination unverified@dest\.test not verified$/);
    assert.doesNotMatch(decision.detail, /inbox@dest\.test/);
  });

  it("treats a rule as inactive when only a backup is unverified", () => {
    assert.equal(refused(resolveRecipient("backup@example.com", t)).reason, "rule-inactive");
  });

  it("refuses user+tag as rule-inactive when its base rule is inactive, rather than using the catch-all", () => {
    assert.equal(refused(resolveRecipient("base+tag@example.com", t)).reason, "rule-inactive");
  });

  it("refuses user+tag as rule-inactive when its exact rule is disabled and the base rule is inactive", () => {
    assert.equal(refused(resolveRecipient("base+ok@example.com", t)).reason, "rule-inactive");
  });

  it("refuses user+tag as rule-inactive when its exact rule is inactive, even though the base rule is active", () => {
    const exactInactive = table([zone("example.com")], [rule("user@example.com"), rule("user+tag@example.com", forward("unverified@dest.test"))]);
    assert.deepEqual(summary(resolveRecipient("user+tag@example.com", exactInactive)), { refuse: "rule-inactive", domain: "example.com" });
    assert.equal(routed(resolveRecipient("user+other@example.com", exactInactive)).matched, "subaddress-base");
  });

  it("refuses with rule-inactive when the catch-all's destination is unverified", () => {
    const unverifiedCatchAll = table([zone("example.com", { catchAll: catchAll(forward("unverified@dest.test")) })]);
    const decision = refused(resolveRecipient("anyone@example.com", unverifiedCatchAll));
    assert.equal(decision.reason, "rule-inactive");
    assert.match(decision.detail, /rule "catch-all" is inactive/);
  });

  it("becomes active once its destination is verified", () => {
    const verified = table([zone("example.com")], [rule("pending@example.com", forward("unverified@dest.test"))], ["unverified@dest.test"]);
    assert.equal(routed(resolveRecipient("pending@example.com", verified)).ruleId, "rule:pending@example.com");
  });

  it("compares verified destinations case-insensitively", () => {
    const mixed = table([zone("example.com")], [rule("pending@example.com", forward("Mixed.Case@Dest.Test"))], ["mixed.case@dest.test"]);
    assert.equal(routed(resolveRecipient("pending@example.com", mixed)).matched, "exact");
    const upper = table([zone("example.com")], [rule("pending@example.com", forward("mixed.case@dest.test"))], ["MIXED.CASE@DEST.TEST"]);
    assert.equal(routed(resolveRecipient("pending@example.com", upper)).matched, "exact");
  });

  it("matches a verified IDN destination in its punycode form", () => {
    const idn = table([zone("example.com")], [rule("de@example.com", forward("kontakt@Bücher.de"))]);
    assert.equal(routed(resolveRecipient("de@example.com", idn)).matched, "exact");
  });

  it("needs no verification for drop, reject and worker actions", () => {
    const t2 = table(
      [zone("example.com")],
      [rule("drop@example.com", { type: "drop" }), rule("reject@example.com", { type: "reject", reason: "gone" }), rule("worker@example.com", { type: "worker", script: "sorter" })],
      [],
    );
    for (const local of ["drop", "reject", "worker"]) {
      assert.equal(routed(resolveRecipient(`${local}@example.com`, t2)).ruleId, `rule:${local}@example.com`);
    }
  });
});

describe("unverifiedDestinations", () => {
  it("lists the unverified addresses of a forward action in order", () => {
    const action = forward("a@x.net:one@u.net, two@u.net, b@z.net");
    assert.deepEqual(unverifiedDestinations(action, new Set(["a@x.net", "b@z.net"])), ["one@u.net", "two@u.net"]);
  });

  it("is empty when all are verified, compared in lower case", () => {
    assert.deepEqual(unverifiedDestinations(forward("Bob@X.net"), new Set(["bob@x.net"])), []);
  });

  it("is empty for actions without destinations", () => {
    const none = new Set<string>();
    assert.deepEqual(unverifiedDestinations({ type: "drop" }, none), []);
    assert.deepEqual(unverifiedDestinations({ type: "reject", reason: "no" }, none), []);
    assert.deepEqual(unverifiedDestinations({ type: "worker", script: "w" }, none), []);
  });
});

// ── actions ─────────────────────────────────────────────────────────────────

describe("resolveRecipient actions", () => {
  const actions: Record<string, RuleAction> = {
    forward: forward("a@x.net:a@y.net, b@z.net"),
    drop: { type: "drop" },
    reject: { type: "reject", reason: "This address has retired" },
    worker: { type: "worker", script: "sorter" },
  };
  const t = table(
    [zone("example.com", { catchAll: catchAll({ type: "reject", reason: "No such user here" }) })],
    Object.entries(actions).map(([name, action]) => rule(`${name}@example.com`, action)),
  );

  for (const [name, action] of Object.entries(actions)) {
    it(`passes a ${name} action through unchanged`, () => {
      const decision = routed(resolveRecipient(`${name}@example.com`, t));
      assert.equal(decision.action, action);
      assert.equal(decision.ruleName, `${name}@example.com`);
    });
  }

  it("passes the catch-all's reject action through with its reason", () => {
    const decision = routed(resolveRecipient("nobody@example.com", t));
    assert.deepEqual(decision.action, { type: "reject", reason: "No such user here" });
    assert.equal(decision.ruleName, "catch-all");
  });

  it("passes a worker action through for a sub-addressed recipient", () => {
    const decision = routed(resolveRecipient("worker+x@example.com", t));
    assert.equal(decision.matched, "subaddress-base");
    assert.deepEqual(decision.action, { type: "worker", script: "sorter" });
  });
});

// ── zones and relay ─────────────────────────────────────────────────────────

describe("resolveRecipient zones", () => {
  const t = table(
    [
      zone("example.com", { catchAll: catchAll(forward("catch@dest.test")) }),
      zone("off.example", { enabled: false, catchAll: catchAll(forward("catch@dest.test")) }),
      zone("mail.sub.example"),
      zone("sub.example"),
    ],
    [rule("user@example.com"), rule("user@off.example"), rule("user@mail.sub.example"), rule("user@sub.example", forward("base@dest.test"))],
  );

  it("refuses every address of a disabled zone with zone-disabled, even one with a rule", () => {
    for (const address of ["user@off.example", "nobody@off.example", "user+tag@off.example"]) {
      const decision = refused(resolveRecipient(address, t));
      assert.equal(decision.reason, "zone-disabled", address);
      assert.equal(decision.domain, "off.example");
      assert.match(decision.detail, /off\.example/);
    }
  });

  it("refuses a domain that is not a zone as relay-denied", () => {
    const decision = refused(resolveRecipient("user@elsewhere.test", t));
    assert.equal(decision.reason, "relay-denied");
    assert.equal(decision.domain, "elsewhere.test");
    assert.match(decision.detail, /elsewhere\.test is not a domain routed here/);
  });

  it("does not route a sub-domain of a zone (catch-all included)", () => {
    assert.deepEqual(summary(resolveRecipient("user@mail.example.com", t)), { refuse: "relay-denied", domain: "mail.example.com" });
  });

  it("routes a sub-domain that was added as a zone of its own, to its own rules", () => {
    assert.equal(routed(resolveRecipient("user@mail.sub.example", t)).ruleId, "rule:user@mail.sub.example");
    assert.equal(routed(resolveRecipient("user@sub.example", t)).ruleId, "rule:user@sub.example");
  });

  it("does not route a parent domain of a zone", () => {
    assert.deepEqual(summary(resolveRecipient("user@com", t)), { refuse: "relay-denied", domain: "com" });
  });

  it("refuses everything with relay-denied from the empty table", () => {
    assert.deepEqual(summary(resolveRecipient("user@example.com", EMPTY_ROUTING_TABLE)), { refuse: "relay-denied", domain: "example.com" });
  });
});

describe("resolveRecipient refuses relay tricks (never routed)", () => {
  const t = table(
    [zone("example.com", { catchAll: catchAll(forward("catch@dest.test")) })],
    [rule("user@example.com")],
  );
  const cases: [string, RefusalReason, string | null][] = [
    ["user%evil.com@example.com", "routing-trick", null],
    ["evil.com!user@example.com", "routing-trick", null],
    ['"user@evil.com"@example.com', "routing-trick", null],
    ['"user%evil.com"@example.com', "routing-trick", null],
    ["@relay.example:user@evil.com", "routing-trick", null],
    ["@example.com:user@example.com", "routing-trick", null],
    ["user@[127.0.0.1]", "routing-trick", null],
    ["user@example.com@evil.com", "routing-trick", null],
    ["user@evil.com.", "relay-denied", "evil.com"],
    ["user@EXAMPLE.COM.evil.com", "relay-denied", "example.com.evil.com"],
    ["user@ex\u0430mple.com", "relay-denied", "xn--exmple-4nf.com"], // Cyrillic а
    ["user@\u0435xample.com", "relay-denied", "xn--xample-2of.com"], // Cyrillic е
    ["user@examp\u04cfe.com", "relay-denied", "xn--exampe-0kg.com"], // Cyrillic palochka for l
    ["user@127.0.0.1", "syntax", null],
    ["user@2130706433", "syntax", null],
    ["user@ex%61mple.com", "syntax", null],
    ["user@example.com/evil", "syntax", null],
    ["user@example.com#.evil.com", "syntax", null],
    ["user@example.com:25", "syntax", null],
  ];
  for (const [address, reason, domain] of cases) {
    it(`refuses ${address} with ${reason}`, () => {
      assert.deepEqual(summary(resolveRecipient(address, t)), { refuse: reason, domain });
    });
  }

  it("reports the trick in the refusal detail", () => {
    assert.equal(refused(resolveRecipient("user%evil.com@example.com", t)).detail, "sender-specified routing in local part");
    assert.equal(refused(resolveRecipient("@relay.example:user@evil.com", t)).detail, "source route");
    assert.equal(refused(resolveRecipient("user@[127.0.0.1]", t)).detail, "address literal");
  });

  it("refuses malformed addresses with syntax", () => {
    for (const address of ["user", "user@", "user@example..com", '"a"b"@example.com']) {
      assert.equal(refused(resolveRecipient(address, t)).reason, "syntax", address);
    }
  });
});

// ── normalisation ───────────────────────────────────────────────────────────

describe("resolveRecipient normalisation", () => {
  it("matches the local part case-insensitively and keeps its original case in address", () => {
    const t = table([zone("example.com")], [rule("user@example.com")]);
    assert.deepEqual(summary(resolveRecipient("UsEr@example.com", t)), { route: "exact", ruleId: "rule:user@example.com", address: "UsEr@example.com", zone: "example.com" });
  });

  it("matches a rule configured in upper case", () => {
    const t = table([zone("example.com")], [rule("Sales.Team@example.com")]);
    assert.equal(routed(resolveRecipient("sales.team@example.com", t)).ruleId, "rule:Sales.Team@example.com");
  });

  it("keeps the case of the tag in address for a sub-addressed recipient", () => {
    const t = table([zone("example.com")], [rule("user@example.com")]);
    assert.equal(routed(resolveRecipient("User+News@example.com", t)).address, "User+News@example.com");
  });

  it("matches the domain case-insensitively and reports it lower-case", () => {
    const t = table([zone("Example.COM")], [rule("user@EXAMPLE.com")]);
    assert.deepEqual(summary(resolveRecipient("user@EXAMPLE.COM", t)), { route: "exact", ruleId: "rule:user@EXAMPLE.com", address: "user@example.com", zone: "example.com" });
  });

  it("ignores a trailing dot on the recipient's domain", () => {
    const t = table([zone("example.com")], [rule("user@example.com")]);
    assert.deepEqual(summary(resolveRecipient("user@example.com.", t)), { route: "exact", ruleId: "rule:user@example.com", address: "user@example.com", zone: "example.com" });
  });

  it("ignores a trailing dot on the zone's configured name", () => {
    const t = table([zone("example.com.")], [rule("user@example.com.")]);
    assert.equal(routed(resolveRecipient("user@example.com", t)).zone, "example.com");
  });

  it("routes a punycode recipient to a zone configured by its Unicode name", () => {
    const t = table([zone("bücher.de")], [rule("info@bücher.de")]);
    assert.deepEqual(summary(resolveRecipient("info@xn--bcher-kva.de", t)), {
      route: "exact",
      ruleId: "rule:info@bücher.de",
      address: "info@xn--bcher-kva.de",
      zone: "xn--bcher-kva.de",
    });
  });

  it("routes a Unicode recipient to a zone configured by its punycode name", () => {
    const t = table([zone("xn--bcher-kva.de")], [rule("info@xn--bcher-kva.de")]);
    assert.deepEqual(summary(resolveRecipient("Info@BÜCHER.de", t)), {
      route: "exact",
      ruleId: "rule:info@xn--bcher-kva.de",
      address: "Info@xn--bcher-kva.de",
      zone: "xn--bcher-kva.de",
    });
  });

  it("matches a rule written with a Unicode zone against a zone written in punycode", () => {
    const t = table([zone("xn--bcher-kva.de")], [rule("info@BÜCHER.de")]);
    assert.equal(routed(resolveRecipient("info@bücher.de", t)).matched, "exact");
  });

  it("refuses a homograph of a Unicode zone", () => {
    const t = table([zone("bücher.de", { catchAll: catchAll(forward("catch@dest.test")) })]);
    // "bu" + combining diaeresis is NFC-equal to ü and is the same zone; a Cyrillic у is not.
    assert.equal(routed(resolveRecipient("x@bu\u0308cher.de", t)).zone, "xn--bcher-kva.de");
    assert.equal(refused(resolveRecipient("x@b\u0443cher.de", t)).reason, "relay-denied");
  });
});

describe("resolveRecipient sub-address edge cases", () => {
  const t = table(
    [zone("example.com", { catchAll: catchAll(forward("catch@dest.test")) })],
    [rule("user@example.com"), rule("user+a@example.com"), rule("+tag@example.com"), rule("tag@example.com")],
  );

  it("routes user+@ (empty detail) to user's rule", () => {
    assert.deepEqual(summary(resolveRecipient("user+@example.com", t)), {
      route: "subaddress-base",
      ruleId: "rule:user@example.com",
      address: "user+@example.com",
      zone: "example.com",
    });
  });

  it("splits user+a+b at the first + (RFC 5233): the base is user, not user+a", () => {
    const decision = routed(resolveRecipient("user+a+b@example.com", t));
    assert.equal(decision.matched, "subaddress-base");
    assert.equal(decision.ruleId, "rule:user@example.com");
  });

  it("routes user+a exactly even though user+a+b does not reach it", () => {
    assert.equal(routed(resolveRecipient("user+a@example.com", t)).ruleId, "rule:user+a@example.com");
  });

  it("treats +tag as a whole local part: it matches its own rule, never tag's", () => {
    assert.deepEqual(summary(resolveRecipient("+tag@example.com", t)), {
      route: "exact",
      ruleId: "rule:+tag@example.com",
      address: "+tag@example.com",
      zone: "example.com",
    });
  });

  it("sends +other to the catch-all: an empty base is not a sub-address", () => {
    assert.equal(routed(resolveRecipient("+other@example.com", t)).matched, "catch-all");
  });

  it("matches a sub-addressed recipient's base case-insensitively", () => {
    assert.equal(routed(resolveRecipient("USER+Tag@example.com", t)).ruleId, "rule:user@example.com");
  });

  it("does not treat - as a sub-address separator", () => {
    assert.equal(routed(resolveRecipient("user-tag@example.com", t)).matched, "catch-all");
  });
});

describe("resolveRecipient dot handling", () => {
  const t = table(
    [
      zone("insensitive.example", { dotInsensitive: true }),
      zone("sensitive.example", { catchAll: catchAll(forward("catch@dest.test")) }),
    ],
    [rule("j.doe@insensitive.example"), rule("jdoe@sensitive.example"), rule("j.doe+exact@insensitive.example", forward("base@dest.test"))],
  );

  it('treats "j.doe" and "jdoe" as one mailbox in a dot-insensitive zone', () => {
    for (const address of ["jdoe@insensitive.example", "j.doe@insensitive.example", "J.D.O.E@insensitive.example", ".jdoe.@insensitive.example"]) {
      assert.equal(routed(resolveRecipient(address, t)).ruleId, "rule:j.doe@insensitive.example", address);
    }
  });

  it("keeps the dots as written in address for a dot-insensitive zone", () => {
    assert.equal(routed(resolveRecipient("J.Doe@insensitive.example", t)).address, "J.Doe@insensitive.example");
  });

  it("applies dot-insensitivity to the base of a sub-addressed recipient", () => {
    const decision = routed(resolveRecipient("jd.oe+news@insensitive.example", t));
    assert.equal(decision.matched, "subaddress-base");
    assert.equal(decision.ruleId, "rule:j.doe@insensitive.example");
  });

  it("matches an exact sub-addressed rule ignoring dots in a dot-insensitive zone", () => {
    assert.equal(routed(resolveRecipient("jdoe+exact@insensitive.example", t)).ruleId, "rule:j.doe+exact@insensitive.example");
  });

  it('treats "j.doe" and "jdoe" as different mailboxes in a dot-sensitive zone', () => {
    assert.equal(routed(resolveRecipient("jdoe@sensitive.example", t)).matched, "exact");
    assert.equal(routed(resolveRecipient("j.doe@sensitive.example", t)).matched, "catch-all");
  });

  it("refuses j.doe as unknown in a dot-sensitive zone without a catch-all", () => {
    const strict = table([zone("sensitive.example")], [rule("jdoe@sensitive.example")]);
    assert.equal(refused(resolveRecipient("j.doe@sensitive.example", strict)).reason, "unknown-recipient");
  });
});

// ── routing table ───────────────────────────────────────────────────────────

describe("buildRoutingTable", () => {
  it("indexes zones by normalised name", () => {
    const t = table([zone("Bücher.DE."), zone("EXAMPLE.com")]);
    assert.deepEqual([...t.zones.keys()], ["xn--bcher-kva.de", "example.com"]);
    assert.equal(t.zones.get("xn--bcher-kva.de")?.name, "xn--bcher-kva.de");
  });

  it("indexes rules by lower-cased local part and zone", () => {
    const t = table([zone("example.com"), zone("insensitive.example", { dotInsensitive: true })], [rule("Sales@Example.com"), rule("J.Doe@insensitive.example")]);
    assert.deepEqual([...t.rules.keys()].toSorted(), ["jdoe@insensitive.example", "sales@example.com"]);
  });

  it("skips zones whose name is not a domain, and rules for zones that do not exist", () => {
    const t = table([zone("not a domain"), zone("example.com")], [rule("user@not a domain"), rule("user@missing.example"), rule("user@example.com")]);
    assert.deepEqual([...t.zones.keys()], ["example.com"]);
    assert.deepEqual([...t.rules.keys()], ["user@example.com"]);
    assert.deepEqual(summary(resolveRecipient("user@missing.example", t)), { refuse: "relay-denied", domain: "missing.example" });
  });

  it("lower-cases verified destinations", () => {
    const t = table([], [], ["Bob@X.net"]);
    assert.ok(t.verified.get("default")?.has("bob@x.net"));
  });

  it("is frozen: the table and its entries cannot be changed in place", () => {
    const t = table([zone("example.com")], [rule("user@example.com")]);
    const zoneEntry = t.zones.get("example.com");
    const ruleEntry = t.rules.get("user@example.com");
    assert.ok(zoneEntry !== undefined && ruleEntry !== undefined);
    assert.ok(Object.isFrozen(t));
    assert.ok(Object.isFrozen(zoneEntry));
    assert.ok(Object.isFrozen(ruleEntry));
  });

  it("keeps only the routing fields of a rule entry", () => {
    const t = table([zone("example.com")], [rule("user@example.com", { type: "drop" })]);
    assert.deepEqual(t.rules.get("user@example.com"), { id: "rule:user@example.com", name: "user@example.com", enabled: true, action: { type: "drop" } });
  });

  it("is unaffected by later changes to its input arrays", () => {
    const zones = [zone("example.com")];
    const rules = [rule("user@example.com")];
    const t = table(zones, rules);
    zones.push(zone("late.example"));
    rules.push(rule("late@example.com"));
    assert.equal(t.zones.size, 1);
    assert.equal(refused(resolveRecipient("late@example.com", t)).reason, "unknown-recipient");
  });
});

describe("localKey", () => {
  it("lower-cases the local part", () => {
    assert.equal(localKey({ dotInsensitive: false }, "J.Doe+Tag"), "j.doe+tag");
  });

  it("removes every dot in a dot-insensitive zone", () => {
    assert.equal(localKey({ dotInsensitive: true }, ".J..Doe.+a.b"), "jdoe+ab");
  });
});

// ── plan keys ───────────────────────────────────────────────────────────────

describe("planKey", () => {
  const t = table(
    [zone("example.com", { catchAll: catchAll({ type: "drop" }) })],
    [
      rule("one@example.com", forward("a@x.net:a@y.net, b@z.net")),
      rule("two@example.com", forward("a@x.net:a@y.net, b@z.net")),
      rule("upper@example.com", forward("A@X.net:a@Y.NET, B@z.net")),
      rule("swapped@example.com", forward("b@z.net, a@x.net:a@y.net")),
      rule("backups-swapped@example.com", forward("a@y.net:a@x.net, b@z.net")),
      rule("flattened@example.com", forward("a@x.net, a@y.net, b@z.net")),
      rule("single@example.com", forward("a@x.net")),
      rule("reject1@example.com", { type: "reject", reason: "gone" }),
      rule("reject2@example.com", { type: "reject", reason: "gone" }),
      rule("reject3@example.com", { type: "reject", reason: "moved" }),
      rule("drop@example.com", { type: "drop" }),
      rule("worker@example.com", { type: "worker", script: "sorter" }),
      rule("other-worker@example.com", { type: "worker", script: "other" }),
    ],
  );
  const key = (address: string): string => planKey(routed(resolveRecipient(address, t)));

  it("gives the same key to recipients whose forward actions are equal", () => {
    assert.equal(key("one@example.com"), key("two@example.com"));
    assert.equal(key("one@example.com"), "forward:a@x.net:a@y.net,b@z.net");
  });

  it("gives the same key to the same rule reached through different recipients", () => {
    assert.equal(key("one@example.com"), key("one+tag@example.com"));
    assert.equal(key("one@example.com"), key("ONE@example.com"));
  });

  it("ignores the case of destination addresses", () => {
    assert.equal(key("upper@example.com"), key("one@example.com"));
  });

  it("gives different keys to different destinations", () => {
    assert.notEqual(key("single@example.com"), key("one@example.com"));
    assert.equal(key("single@example.com"), "forward:a@x.net");
  });

  it("distinguishes backups from primaries", () => {
    assert.notEqual(key("flattened@example.com"), key("one@example.com"));
    assert.equal(key("flattened@example.com"), "forward:a@x.net,a@y.net,b@z.net");
  });

  it("distinguishes backup order (the order they are tried in)", () => {
    assert.notEqual(key("backups-swapped@example.com"), key("one@example.com"));
  });

  it("keeps primary order in the key (documents current behaviour: equal sets in another order do not share)", () => {
    assert.notEqual(key("swapped@example.com"), key("one@example.com"));
    assert.equal(key("swapped@example.com"), "forward:b@z.net,a@x.net:a@y.net");
  });

  it("gives every drop the same key, whichever rule or catch-all it came from", () => {
    assert.equal(key("drop@example.com"), "drop");
    assert.equal(key("nobody@example.com"), "drop");
  });

  it("groups rejects by reason", () => {
    assert.equal(key("reject1@example.com"), key("reject2@example.com"));
    assert.equal(key("reject1@example.com"), "reject:gone");
    assert.notEqual(key("reject1@example.com"), key("reject3@example.com"));
  });

  it("gives each worker recipient its own key (a worker sees message.to per recipient)", () => {
    assert.equal(key("worker@example.com"), "worker:sorter:worker@example.com");
    assert.notEqual(key("worker@example.com"), key("worker+tag@example.com"));
    assert.equal(key("worker+tag@example.com"), "worker:sorter:worker+tag@example.com");
  });

  it("gives the same worker key to a recipient spelled in another case", () => {
    assert.equal(key("WORKER@Example.com"), key("worker@example.com"));
  });

  it("gives different worker keys to different scripts", () => {
    assert.equal(key("other-worker@example.com"), "worker:other:other-worker@example.com");
    assert.notEqual(key("other-worker@example.com"), key("worker@example.com"));
  });

  it("never lets different action types share a key", () => {
    const keys = ["single@example.com", "drop@example.com", "reject1@example.com", "worker@example.com"].map(key);
    assert.equal(new Set(keys).size, keys.length);
  });
});

// ── scale ───────────────────────────────────────────────────────────────────

describe("resolveRecipient at scale", () => {
  it("resolves the right rule among 100,000 rules across several zones", () => {
    const zones = [
      zone("big.example", { catchAll: catchAll(forward("catch@dest.test"), true, "catch-all:big") }),
      zone("dots.example", { dotInsensitive: true }),
      zone("nosub.example", { supportSubaddress: false }),
      zone("bücher.de"),
    ];
    // Rules 500, 1500, … (big.example) and 503, 1503, … (bücher.de) are disabled.
    const DISABLED = new Set([500, 503]);
    const zoneNames = ["big.example", "dots.example", "nosub.example", "bücher.de"];
    const rules: RuleInput[] = [];
    for (let i = 0; i < 100_000; i++) {
      const zoneName = zoneNames[i % zoneNames.length]!;
      rules.push({ id: `r${i}`, name: `rule ${i}`, enabled: !DISABLED.has(i % 1000), zone: zoneName, local: `user.${i}`, action: forward(`u${i}@dest.test`) });
    }
    const verified = rules.map((_, i) => `u${i}@dest.test`).concat("catch@dest.test");
    const t = buildRoutingTable({ zones, rules, verifiedDestinations: verified });
    assert.equal(t.rules.size, 100_000);

    const expectations: [string, string | RefusalReason, RoutingDecision["kind"]][] = [
      ["user.0@big.example", "r0", "route"],
      ["USER.99996@big.example", "r99996", "route"],
      ["user.50000+tag@big.example", "r50000", "route"],
      ["user.1@dots.example", "r1", "route"],
      ["user1@dots.example", "r1", "route"],
      ["u.s.e.r.77777+x@dots.example", "r77777", "route"],
      ["user.2@nosub.example", "r2", "route"],
      ["user.2+tag@nosub.example", "unknown-recipient", "refuse"],
      ["user.3@xn--bcher-kva.de", "r3", "route"],
      ["user.99999@xn--bcher-kva.de", "r99999", "route"],
      ["user.99503@xn--bcher-kva.de", "unknown-recipient", "refuse"], // disabled, and bücher.de has no catch-all
      ["user.1500@big.example", "catch-all:big", "route"], // disabled, falls to the catch-all
      ["user.1500+tag@big.example", "catch-all:big", "route"],
      ["user.4@dots.example", "unknown-recipient", "refuse"], // rule 4 lives in big.example
      ["user.100000@big.example", "catch-all:big", "route"],
      ["user.0@small.example", "relay-denied", "refuse"],
    ];
    for (const [address, expected, kind] of expectations) {
      const decision = resolveRecipient(address, t);
      assert.equal(decision.kind, kind, address);
      if (decision.kind === "route") {
        assert.equal(decision.ruleId, expected, address);
        if (decision.matched !== "catch-all") {
          assert.deepEqual(decision.action, forward(`u${expected.slice(1)}@dest.test`), address);
        }
      } else {
        assert.equal(decision.reason, expected, address);
      }
    }
  });
});
