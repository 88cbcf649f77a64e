/**
 * Lets mailauth's signers take a parsed private key (a KeyObject) instead of PEM text, so a
 * DKIM key is parsed once when it is loaded, not again for every signature (issue 11: parsing
 * cost ~0.3 ms per message, three times per message with the ARC set).
 *
 * mailauth 7 hands `privateKey` to `crypto.sign()` for the ARC-Seal (which takes a KeyObject
 * as it is) but first through its `getPrivateKey()` for DKIM-Signature and
 * ARC-Message-Signature, which only takes PEM or a raw Ed25519 key. We wrap that function so a
 * KeyObject passes through unchanged; any other input goes to mailauth's own code as before.
 *
 * Promises: `keyObjectsAccepted()` resolves true only after a real signature was made with a
 * KeyObject through mailauth's signer, so a mailauth that loaded its signer before the wrap
 * (it keeps its own reference) or a release that changed the function makes callers keep
 * passing PEM — slower, never broken. mailauth is pinned to an exact version for this.
 */
import { generateKeyPairSync, KeyObject } from "node:crypto";
import { createRequire } from "node:module";

type GetPrivateKey = (key: unknown) => KeyObject;
const tools = createRequire(import.meta.url)("mailauth/lib/tools") as { getPrivateKey?: GetPrivateKey };
const original = tools.getPrivateKey;
if (typeof original === "function" && !(original as { keyObjectAware?: boolean }).keyObjectAware) {
  const wrapped = function getPrivateKey(key: unknown): KeyObject {
    return key instanceof KeyObject ? key : original(key);
  };
  (wrapped as { keyObjectAware?: boolean }).keyObjectAware = true;
  tools.getPrivateKey = wrapped;
}

let accepted: Promise<boolean> | null = null;

/** Whether mailauth's DKIM signer takes KeyObjects here (checked once, by signing a probe). */
export function keyObjectsAccepted(): Promise<boolean> {
  accepted ??= probe();
  return accepted;
}

async function probe(): Promise<boolean> {
  try {
    // loaded after the wrap above, so a signer loaded here sees it; the module message-signer.ts signs with
    const { dkimSign } = await import("mailauth/lib/dkim/sign.js");
    const { privateKey } = generateKeyPairSync("ed25519");
    const options = { signatureData: [{ signingDomain: "example.com", selector: "probe", privateKey, algorithm: "ed25519-sha256" }] };
    const result = await dkimSign(Buffer.from("From: probe@example.com\r\nSubject: probe\r\n\r\nprobe\r\n"), options as unknown as Parameters<typeof dkimSign>[1]);
    return result.errors.length === 0 && /^DKIM-Signature:/i.test(result.signatures);
  } catch {
    return false;
  }
}
