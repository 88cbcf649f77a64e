import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hostnameProblem } from "../../src/config/host-name-check.ts";

describe("host name check", () => {
  it("accepts fully qualified names, the reserved test names included", () => {
    for (const name of ["mx.example.com", "mx.example.com.", "mail.xn--bcher-kva.example", "mx.mailroute.test"]) assert.equal(hostnameProblem(name), null, name);
  });

  it("says why a short, local-only or numeric name cannot be an MX", () => {
    assert.match(hostnameProblem("vm") ?? "", /"vm" is not a fully qualified domain name/);
    assert.match(hostnameProblem("ip-10-0-0-5") ?? "", /not a fully qualified domain name/);
    assert.match(hostnameProblem("host.localdomain") ?? "", /local-only name/);
    assert.match(hostnameProblem("printer.local") ?? "", /local-only name/);
    assert.match(hostnameProblem("192.0.2.1") ?? "", /is an address/);
    assert.match(hostnameProblem("host.123") ?? "", /does not end in a top-level domain/);
  });
});
