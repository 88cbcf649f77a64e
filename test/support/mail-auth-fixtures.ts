/**
 * Sender-side fixtures for authentication tests: DKIM keys and their DNS records, test
 * messages, and signing/sealing them with mailauth, as a sending domain's own MTA would.
 */
import { generateKeyPairSync } from "node:crypto";
import { Readable } from "node:stream";
import { dkimSign, sealMessage, type DKIMSignOptions } from "mailauth";

export interface DkimKey {
  privateKey: string;
  /** The TXT value to publish at `<selector>._domainkey.<domain>` (RFC 6376 §3.6.1). */
  record: string;
}

export function generateDkimKey(): DkimKey {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "der" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { privateKey, record: `v=DKIM1; k=rsa; p=${publicKey.toString("base64")}` };
}

export interface TestMessageOptions {
  from: string;
  to?: string;
  subject?: string;
  body?: string;
  /** Extra header lines, without line endings. */
  headers?: readonly string[];
}

export function testMessage(options: TestMessageOptions): Buffer {
  const lines = [
    `From: ${options.from}`,
    `To: ${options.to ?? "hello@routed.example"}`,
    `Subject: ${options.subject ?? "Test message"}`,
    `Date: ${new Date().toUTCString().replace(/GMT$/, "+0000")}`,
    `Message-ID: <${Math.random().toString(36).slice(2)}@${options.from.split("@")[1] ?? "sender.example"}>`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    ...(options.headers ?? []),
  ];
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n${options.body ?? "Hello,\r\nthis is a test.\r\n"}`);
}

export interface SigningDomain {
  domain: string;
  selector: string;
  key: DkimKey;
}

/** The message with a DKIM-Signature of `signer` on top. */
export async function signMessage(message: Buffer, signer: SigningDomain): Promise<Buffer> {
  const { signatures, errors } = await dkimSign(message, signingOptions(signer));
  if (errors.length > 0 || signatures === "") throw new Error(`signing for ${signer.domain} failed: ${JSON.stringify(errors)}`);
  return Buffer.concat([Buffer.from(signatures), message]);
}

/** dkimSign options for one signature (top-level signingDomain/selector alone sign nothing). */
export function signingOptions(signer: SigningDomain): DKIMSignOptions {
  const signature = { signingDomain: signer.domain, selector: signer.selector, privateKey: signer.key.privateKey };
  return { ...signature, signatureData: [signature] };
}

/** The message with an ARC set of `sealer` on top, as an earlier forwarding hop adds it. */
export async function sealAsForwarder(message: Buffer, sealer: SigningDomain, authResults: string): Promise<Buffer> {
  const headers = await sealMessage(message, {
    signingDomain: sealer.domain,
    selector: sealer.selector,
    privateKey: sealer.key.privateKey,
    authResults,
    cv: "none",
  });
  if (headers.length === 0) throw new Error(`sealing for ${sealer.domain} failed`);
  return Buffer.concat([headers, message]);
}

/**
 * A large message as a stream, produced line by line so that neither the test nor the code
 * under test is handed the whole thing at once. Each call yields the same bytes.
 */
export function largeMessageStream(header: Buffer, bodyBytes: number): Readable {
  const line = Buffer.from(`${"The quick brown fox jumps over the lazy dog. ".repeat(3).trimEnd()}\r\n`);
  const perChunk = 1024;
  return Readable.from(
    (function* generate() {
      yield header;
      let sent = 0;
      while (sent < bodyBytes) {
        const chunk = Buffer.concat(Array.from({ length: perChunk }, () => line));
        yield chunk;
        sent += chunk.length;
      }
    })(),
    { objectMode: false },
  );
}
