import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { checkCertificate } from "../../src/tls/certificate-check.ts";
import { createTestCa, type TestCa } from "../support/test-ca.ts";

describe("certificate check", () => {
  let ca: TestCa;
  before(() => {
    ca = createTestCa();
  });
  after(() => ca.remove());

  it("accepts a certificate that chains to an extra root and names the host, with its expiry", async () => {
    const leaf = ca.issue("good", ["mx.example.com"], { days: 2 });
    const verdict = await checkCertificate(leaf, "mx.example.com", { extraCa: [ca.cert] });
    assert.deepEqual([verdict.ok, verdict.problem], [true, null]);
    assert.ok(verdict.daysLeft >= 0 && verdict.daysLeft <= 2, String(verdict.daysLeft));
    assert.match(verdict.issuer, /mailroute Test CA/);
  });

  it("says why a certificate would not validate: self-signed, untrusted issuer, another name, name only in the CN", async () => {
    const selfSigned = await checkCertificate(ca.selfSigned("self", ["mx.example.com"]), "mx.example.com", { extraCa: [ca.cert] });
    assert.equal(selfSigned.ok, false);
    assert.match(selfSigned.problem ?? "", /self-signed/);

    const untrusted = await checkCertificate(ca.issue("untrusted", ["mx.example.com"]), "mx.example.com");
    assert.equal(untrusted.ok, false, "the test CA is not a system root");
    assert.match(untrusted.problem ?? "", /issuer is not a trusted root|issuer is unknown|root nobody trusts/);

    const otherName = await checkCertificate(ca.issue("other", ["mail.example.org"]), "mx.example.com", { extraCa: [ca.cert] });
    assert.equal(otherName.ok, false);
    assert.match(otherName.problem ?? "", /not valid for mx\.example\.com \(its names: mail\.example\.org\)/);

    const cnOnly = await checkCertificate(ca.issue("cn-only", ["mx.example.com"], { subjectAltName: false }), "mx.example.com", { extraCa: [ca.cert] });
    assert.equal(cnOnly.ok, false, "RFC 8461 wants a DNS-ID");
  });
});
