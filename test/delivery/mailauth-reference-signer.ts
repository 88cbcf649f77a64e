/**
 * The signer as it was before issue 11 made our own: mailauth 7.1's DkimSigner and createSeal
 * driven with the header block and the relaxed body hash, exactly as message-signer.ts drove
 * them. It lives here, in the tests only, so signature-equivalence.test.ts can hold the new
 * signer to mailauth's output byte for byte; the signing thread never loads it.
 *
 * What is ours in it is what message-signer.ts keeps doing before it signs (which key, which cv=,
 * whether the inbound verdict is about this chain); everything that makes a header line is
 * mailauth's: its header parser, signer, chain reader, sealer and body canonicalizer.
 */
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createSeal, getARChain, type ARCChainEntry } from "mailauth";
import { HeaderBlockCapture, HeaderBlockTooLarge } from "../../src/delivery/header-block-capture.ts";
import { authResultsPayload, DKIM_SIGNED_FIELDS, type ChainValidation, type InboundArc, type MessageSigner, type MessageSignerOptions, type SignedHeaders } from "../../src/delivery/message-signer.ts";
import { isSpooledCopy, readSpooledCopy } from "../../src/delivery/spooled-copy.ts";

const require = createRequire(import.meta.url);
interface MailauthHeaders {
  parsed: { key: string; casedKey: string; line: Buffer }[];
  original: Buffer;
}
const { parseHeaders } = require("mailauth/lib/tools") as { parseHeaders: (block: Buffer) => MailauthHeaders };
const { DkimSigner } = require("mailauth/lib/dkim/dkim-signer") as {
  DkimSigner: new (options: object) => { finalize(): Promise<void>; signatureHeaders: string[]; errors: { selector?: string; err: Error }[] };
};
const { dkimBody } = require("mailauth/lib/dkim/body") as {
  dkimBody: (canonicalization: string, algorithm: string, maxBodyLength: false) => { update(chunk: Buffer): void; digest(encoding: "base64"): string };
};

const MAX_HEADER_BLOCK = 512 * 1024;

export function createMailauthSigner(options: MessageSignerOptions): MessageSigner {
  const hostname = options.hostname.trim();
  const now = options.now ?? (() => new Date());

  return async function mailauthSignAndSeal(request) {
    const keys = await options.keys.keysFor(request.routingDomain);
    const signTime = now();
    const dkimKeys = [keys.rsa, ...(keys.ed25519 ? [keys.ed25519] : [])];
    const skipped: SignedHeaders["skipped"] = [];

    const bodyHash = dkimBody("relaxed", "sha256", false);
    const capture = new HeaderBlockCapture(MAX_HEADER_BLOCK, { onBody: (chunk) => bodyHash.update(chunk) });
    const source = Buffer.isBuffer(request.message) ? Readable.from([request.message]) : isSpooledCopy(request.message) ? Readable.from(readSpooledCopy(request.message)) : request.message;
    try {
      await pipeline(source, capture);
    } catch (error) {
      if (!(error instanceof HeaderBlockTooLarge)) throw error;
      skipped.push({ part: "dkim", reason: error.message }, { part: "arc", reason: error.message });
      return { headers: Buffer.alloc(0), dkim: [], arc: null, skipped };
    }
    const signer = new DkimSigner({
      canonicalization: "relaxed/relaxed",
      headerList: [...DKIM_SIGNED_FIELDS],
      signTime,
      strict: true,
      signatureData: dkimKeys.map((key) => ({
        signingDomain: keys.domain,
        selector: key.selector,
        privateKey: key.privateKeyPem,
        algorithm: key.algorithm === "rsa" ? "rsa-sha256" : "ed25519-sha256",
      })),
      headers: parseHeaders(capture.block),
      bodyHash: bodyHash.digest("base64"),
    });
    await signer.finalize();
    const dkimFields = signer.signatureHeaders;
    for (const failure of signer.errors) skipped.push({ part: "dkim", reason: `${failure.selector ?? "?"}: ${failure.err.message}` });
    const dkim = dkimFields.map((field) => ({ selector: tag(field, "s") ?? "", algorithm: tag(field, "a") ?? "" }));

    const sealed = await seal();
    const lines = [...(sealed?.headers ?? []), ...dkimFields];
    return {
      headers: Buffer.from(lines.map((line) => `${line}\r\n`).join(""), "binary"),
      dkim,
      arc: sealed === null ? null : { instance: sealed.instance, cv: sealed.cv },
      skipped,
    };

    async function seal(): Promise<{ headers: string[]; instance: number; cv: ChainValidation } | null> {
      const inbound = request.arc;
      if (inbound === null || inbound === false) return skip("no inbound ARC result to seal");
      const cv = chainValidation(inbound);
      if (cv === null) {
        return skip(
          inbound.status.result === "fail"
            ? "inbound ARC chain is fail and its newest seal already says cv=fail (RFC 8617 §5.1)"
            : `inbound ARC result "${inbound.status.result}" is none of none/pass/fail`,
        );
      }
      const bh = dkimFields.map((field) => tag(field, "bh")).find((value) => value !== null) ?? null;
      if (bh === null) return skip("no DKIM signature of ours to take the body hash from");
      const headers = parseHeaders(Buffer.concat([Buffer.from(dkimFields.map((line) => `${line}\r\n`).join(""), "binary"), capture.block]));
      let chain: ARCChainEntry[] | false = false;
      let chainReadable = true;
      try {
        chain = getARChain(headers);
      } catch {
        chainReadable = false;
      }
      const highest = chain === false ? 0 : (chain.at(-1)?.i ?? 0);
      if (chainReadable && typeof inbound.i === "number" && inbound.i !== highest) {
        return skip(`inbound ARC result is for i=${inbound.i} but the message's highest instance is i=${highest}`);
      }
      const result = await createSeal(false, {
        headers,
        arc: { chain },
        seal: {
          signingDomain: keys.domain,
          selector: keys.rsa.selector,
          privateKey: keys.rsa.privateKeyPem,
          algorithm: "rsa-sha256",
          cv,
          authResults: authResultsPayload(request.authenticationResults, inbound, hostname),
          bodyHash: bh,
          signTime,
        },
        strict: true,
      } as unknown as Parameters<typeof createSeal>[1]);
      const [arcSeal] = result.headers;
      if (arcSeal === undefined) return skip(result.errors.map((failure) => failure.err.message).join("; ") || "mailauth created no ARC set");
      return { headers: result.headers, instance: Number(tag(arcSeal, "i")), cv };
    }

    function skip(reason: string): null {
      skipped.push({ part: "arc", reason });
      return null;
    }
  };
}

function chainValidation(arc: InboundArc): ChainValidation | null {
  const result = arc.status.result;
  if (result === "none" || result === "pass") return result;
  if (result === "fail" && arc.status.shouldSeal === true) return "fail";
  return null;
}

function tag(field: string, name: string): string | null {
  const value = field.slice(field.indexOf(":") + 1).replace(/\s+/g, "");
  for (const spec of value.split(";")) {
    const eq = spec.indexOf("=");
    if (eq > 0 && spec.slice(0, eq) === name) return spec.slice(eq + 1);
  }
  return null;
}
