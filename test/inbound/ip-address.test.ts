import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { networkKey, parseIpAddress, reversedLabels } from "../../src/inbound/ip-address.ts";

function parsed(text: string) {
  const ip = parseIpAddress(text);
  assert.ok(ip !== null, `${text} parses`);
  return ip;
}

describe("client IP addresses", () => {
  it("reads IPv4, and IPv6 in its one RFC 5952 spelling", () => {
    assert.equal(parsed("192.0.2.1").text, "192.0.2.1");
    assert.equal(parsed("2001:DB8:0:0:0:0:0:0001").text, "2001:db8::1");
    assert.equal(parsed("fe80::1%eth0").text, "fe80::1");
    assert.equal(parsed("::").text, "::");
    assert.equal(parsed("1:2:3:4:5:6:7::").text, "1:2:3:4:5:6:7:0", "a single zero group is not compressed");
    assert.equal(parsed("2001:db8:0:0:1:0:0:1").text, "2001:db8::1:0:0:1", "the first of two equal runs");
    assert.equal(parsed("2001:0:0:1:0:0:0:1").text, "2001:0:0:1::1", "the longest run");
  });

  it("reads an IPv4-mapped IPv6 address as the IPv4 address", () => {
    assert.deepEqual(parsed("::ffff:192.0.2.1"), parsed("192.0.2.1"));
    assert.deepEqual(parsed("::FFFF:c000:201"), parsed("192.0.2.1"));
  });

  it("keeps an IPv6 address with a dotted tail that is not IPv4-mapped as IPv6", () => {
    assert.equal(parsed("64:ff9b::192.0.2.1").text, "64:ff9b::c000:201");
  });

  it("refuses what is not an address", () => {
    for (const text of ["", "mx.example.com", "[UNAVAILABLE]", "192.0.2", "1::2::3", "192.0.2.256"]) assert.equal(parseIpAddress(text), null, text);
  });

  it("reverses octets and nibbles for DNSBL names (RFC 5782 §2.1, §2.4)", () => {
    assert.equal(reversedLabels(parsed("192.0.2.99")), "99.2.0.192");
    assert.equal(reversedLabels(parsed("2001:db8:1:2:3:4:567:89ab")), "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2");
  });

  it("names the network a client is counted in", () => {
    assert.equal(networkKey(parsed("192.0.2.1"), 64), "192.0.2.1");
    assert.equal(networkKey(parsed("2001:db8:1:2:3:4:5:6"), 64), "2001:db8:1:2::/64");
    assert.equal(networkKey(parsed("2001:db8:1:2:3:4:5:6"), 48), "2001:db8:1::/48");
    assert.equal(networkKey(parsed("2001:db8:1:2ff:3:4:5:6"), 56), "2001:db8:1:200::/56");
    assert.equal(networkKey(parsed("2001:db8:1:2:3:4:5:6"), 128), "2001:db8:1:2:3:4:5:6/128");
    assert.equal(networkKey(parsed("2001:db8:20::ffff"), 64), "2001:db8:20::/64");
  });
});
