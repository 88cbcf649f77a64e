// The failover-chain notation the rules editor and table show: parse, format, describe, validate.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addressesIn, describeChains, formatDestinations, parseDestinations, validateChains } from "../src/destinations.ts";

describe("destination chains", () => {
  it("reads `a@x:b@y, c@z` as two destinations, the first with a backup", () => {
    const chains = parseDestinations(["a@x.test:b@y.test", "c@z.test"]);
    assert.deepEqual(chains, [["a@x.test", "b@y.test"], ["c@z.test"]]);
    assert.equal(describeChains(chains), "a@x.test (backup b@y.test) + c@z.test");
  });

  it("formats edited chains back, dropping blank inputs", () => {
    assert.deepEqual(formatDestinations([["a@x.test", " ", "b@y.test"], [""], ["c@z.test"]]), ["a@x.test:b@y.test", "c@z.test"]);
  });

  it("round-trips", () => {
    const value = ["one@a.test:two@b.test:three@c.test", "four@d.test"];
    assert.deepEqual(formatDestinations(parseDestinations(value)), value);
  });

  it("lists every address a rule forwards to, backups included, and none for drop", () => {
    assert.deepEqual(addressesIn([{ type: "forward", value: ["a@x.test:b@y.test", "c@z.test"] }]), ["a@x.test", "b@y.test", "c@z.test"]);
    assert.deepEqual(addressesIn([{ type: "drop" }]), []);
  });

  it("explains what blocks saving", () => {
    assert.deepEqual(validateChains([[""]]), ["Add at least one destination."]);
    assert.deepEqual(validateChains([["not-an-address"]]), ['"not-an-address" is not an email address.']);
    assert.deepEqual(validateChains([["a@x.test", "b@y.test"]]), []);
  });
});
