// message-signer first: mailauth's signer must load after the KeyObject wrap, as in the
// signing threads (signing-worker.ts)
import { createMessageSigner } from "../../src/delivery/message-signer.ts";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it, mock } from "node:test";
import { DkimKeyStore } from "../../src/delivery/dkim-keys.ts";
import { keyObjectsAccepted } from "../../src/delivery/mailauth-key-objects.ts";

it("parses a domain's keys once, at load, and never again per signature", async () => {
  const dir = await mkdtemp(join(tmpdir(), "mailroute-key-objects-"));
  try {
    const keys = new DkimKeyStore({ dir, ed25519: true });
    const loaded = await keys.keysFor("route.example");
    assert.equal(loaded.rsa.privateKey.asymmetricKeyType, "rsa");
    assert.equal((await keys.keysFor("route.example")).rsa.privateKey, loaded.rsa.privateKey, "the same parsed key every time");
    assert.equal(await keyObjectsAccepted(), true, "mailauth's signer takes the parsed key");

    const sign = createMessageSigner({ keys, hostname: "mx.route.example" });
    const parse = mock.method(crypto, "createPrivateKey");
    try {
      for (let index = 0; index < 3; index++) {
        const signed = await sign({
          message: Buffer.from(`From: a@sender.example\r\nSubject: ${index}\r\n\r\nbody\r\n`),
          routingDomain: "route.example",
          arc: { status: { result: "none" } },
          authenticationResults: "mx.route.example; spf=pass",
        });
        assert.equal(signed.dkim.length, 2);
        assert.notEqual(signed.arc, null, "sealed as well");
      }
      assert.equal(parse.mock.callCount(), 0, "no key parsed while signing three messages");
    } finally {
      parse.mock.restore();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
