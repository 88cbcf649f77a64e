/**
 * sealArc: the ARC set (RFC 8617 §5.1) a forwarding ADMD adds to a message — ARC-Seal,
 * ARC-Message-Signature, ARC-Authentication-Results — from the message's header fields and
 * the relaxed body hash its DKIM signatures already computed; pure: nothing is read or kept.
 *
 * Promises:
 * - the new set takes the instance after the highest on the message (arc-chain.ts), and is
 *   refused — with the reason, never thrown — where mailauth 7.1's createSeal refuses it in its
 *   strict mode: a chain that already has 50 sets, a newest seal that says cv=fail (§5.1 step
 *   2), a cv= that does not fit the instance (none for i=1 only), cv=pass with no readable
 *   chain to sign, or a key or value no signature can be made with (signature-field.ts);
 * - the ARC-Message-Signature covers the fields mailauth's default ARC list names (our and the
 *   author's DKIM-Signatures among them; never ARC fields or Authentication-Results, §4.1.2),
 *   relaxed/relaxed, rsa-sha256; the ARC-Seal signs the sets of the chain when cv=pass, then
 *   the new ARC-Authentication-Results and ARC-Message-Signature (§5.1.1);
 * - the lines are byte for byte what createSeal wrote for the same input (tested against it).
 */
import { MAX_ARC_INSTANCE, type ArcChain } from "./arc-chain.ts";
import { fieldNameSet, fieldsToSign, relaxedField, type HeaderField } from "./header-fields.ts";
import { signField, signingProblem, unixTime, type KeyOperationSite, type Signing } from "./signature-field.ts";

export type ChainValidation = "none" | "pass" | "fail";

export interface SealRequest {
  /** The header fields as the next hop sees them below the new set (our DKIM-Signatures on top). */
  fields: readonly HeaderField[];
  /** readArcChain(fields). */
  chain: ArcChain;
  /** The relaxed/sha256 body hash, base64 (the bh= of our DKIM signatures). */
  bodyHash: string;
  cv: ChainValidation;
  /** The ARC-Authentication-Results value after "i=N; ". */
  authResults: string;
  /** The sealing key and d=, s=, t=; rsa-sha256 (RFC 8617 §5.1: the one algorithm every validator takes). */
  signing: Signing;
  /** Where the two key operations run (signature-field.ts); default "inline". */
  site?: KeyOperationSite;
}

export type SealResult = { headers: [seal: string, messageSignature: string, authResults: string]; instance: number } | { refused: string };

// mailauth's defaultARCFieldNames: its DKIM list with DKIM-Signature and Delivered-To
const ARC_SIGNED_FIELDS = fieldNameSet([
  "DKIM-Signature", "Delivered-To",
  "From", "Sender", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc",
  "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-ID", "Content-Description",
  "Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc", "Resent-Message-ID",
  "In-Reply-To", "References",
  "List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
  "BIMI-Selector",
]);
const CRLF = "\r\n";

export async function sealArc(request: SealRequest): Promise<SealResult> {
  const { cv, signing, chain } = request;
  if (chain.highest >= MAX_ARC_INSTANCE) return { refused: `Can not add ARC set i=${chain.highest + 1}, the chain already has ${chain.highest} sets` };
  if (chain.latestCv === "fail") return { refused: `The newest ARC-Seal (i=${chain.highest}) has cv=fail, the chain can not be sealed again` };
  const instance = chain.highest + 1;
  // RFC 8617 §5.2 step 3.C
  if ((instance === 1) !== (cv === "none")) return { refused: `cv=${cv} is not valid for ARC instance ${instance}` };
  // a cv=pass seal signs the chain before it (§5.1.1): there must be one that could be read
  if (cv === "pass" && instance > 1 && !chain.sets?.length) return { refused: "cv=pass needs a valid ARC chain to seal" };

  const signed = fieldsToSign(request.fields, ARC_SIGNED_FIELDS);
  if (!signed.some((field) => field.key === "from")) return { refused: "Can not sign a message that has no From header" };
  const problem = signingProblem(signing);
  if (problem !== null) return { refused: problem };
  const t = String(unixTime(signing.time));

  let messageSignature: string;
  let seal: string;
  try {
    messageSignature = await signField(
      "ARC-Message-Signature",
      [["i", String(instance)], ["a", signing.algorithm], ["c", "relaxed/relaxed"], ["d", signing.domain], ["h", signed.map((field) => field.name).join(": ")], ["q", "dns/txt"], ["s", signing.selector], ["t", t], ["bh", request.bodyHash]],
      signing.algorithm,
      signing.key,
      signed.map((field) => relaxedLine(field.line)),
      request.site,
    );
    const authResults = `ARC-Authentication-Results: i=${instance}; ${request.authResults}`;
    const sealed = cv === "pass" ? chain.sets!.flatMap((set) => [set.authenticationResults, set.messageSignature, set.seal].map((field) => relaxedLine(field.line))) : [];
    seal = await signField(
      "ARC-Seal",
      [["i", String(instance)], ["a", signing.algorithm], ["t", t], ["cv", cv], ["d", signing.domain], ["s", signing.selector]],
      signing.algorithm,
      signing.key,
      [...sealed, relaxedLine(authResults), relaxedLine(messageSignature)],
      request.site,
    );
    return { headers: [seal, messageSignature, authResults], instance };
  } catch (error) {
    return { refused: (error as Error).message };
  }
}

function relaxedLine(line: string): Buffer {
  return Buffer.from(relaxedField(line) + CRLF, "latin1");
}
