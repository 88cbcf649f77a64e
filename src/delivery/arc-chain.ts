/**
 * readArcChain: the ARC sets already on a message (RFC 8617 §4.1), read for sealing: which
 * instance a new set takes, what the newest seal said, and which sets a cv=pass seal signs.
 *
 * Promises: the chain is read as mailauth 7.1's getARChain reads it in its lenient mode — what
 * validates our seals in our tests and what sealed before issue 11 — so the set we add sits
 * where a mailauth validator expects it:
 * - a field's instance is its i= tag (the last one; tag names in any case), for an
 *   ARC-Authentication-Results the i= among its RFC 8601 resinfo parts; a field without a
 *   usable instance is not part of the chain;
 * - the chain is unreadable (`sets` null) when the instances are not exactly 1..n (n ≤ 50),
 *   a set lacks one of its three fields or has one twice, a seal's cv= is not none for i=1 and
 *   pass after it, a seal or message signature has no a= of rsa-sha256 / ed25519-sha256, a
 *   seal has h=, or a message signature signs an ARC-Seal (RFC 8617 §4.1.3, §5.2 steps 1-3);
 * - `highest` and `latestCv` say where a new set goes even on an unreadable chain: the highest
 *   integer instance on any ARC field, and the cv= of the newest seal at that instance
 *   (§5.1 steps 2 and 3), so a new set never reuses an instance that exists.
 * Field values are read as UTF-8, as mailauth reads them; the bytes signed stay the field's own.
 */
import type { HeaderField } from "./header-fields.ts";

const ARC_KEYS = ["arc-seal", "arc-message-signature", "arc-authentication-results"] as const;
type ArcKey = (typeof ARC_KEYS)[number];
// RFC 8617 §4.2.1
export const MAX_ARC_INSTANCE = 50;

export interface ArcSet {
  instance: number;
  seal: HeaderField;
  messageSignature: HeaderField;
  authenticationResults: HeaderField;
}

export interface ArcChain {
  /** The sets by instance, empty when there are none; null when the chain is unreadable. */
  sets: ArcSet[] | null;
  /** The instance a new set follows: 0 when there is no ARC field with an instance. */
  highest: number;
  /** The newest seal's cv= in lower case, or null when it has none. */
  latestCv: string | null;
}

/** What we read of an ARC field: its instance and, for the two tag-list fields, their tags. */
interface ArcField {
  key: ArcKey;
  field: HeaderField;
  instance: number | undefined;
  tags: Map<string, string>;
}

export function readArcChain(fields: readonly HeaderField[]): ArcChain {
  const arcFields = fields.filter((field) => (ARC_KEYS as readonly (string | null)[]).includes(field.key)).map(readArcField);
  const sets = chainOf(arcFields);
  let { highest, latestCv } = newestInstance(arcFields);
  const newest = sets?.at(-1);
  if (newest !== undefined && newest.instance >= highest) {
    highest = newest.instance;
    latestCv = cvOf(newest.seal) || latestCv;
  }
  const asFields = (set: ReadSet): ArcSet => ({
    instance: set.instance,
    seal: set.seal.field,
    messageSignature: set.messageSignature.field,
    authenticationResults: set.authenticationResults.field,
  });
  return { sets: sets === null ? null : sets.map(asFields), highest, latestCv };
}

type ReadSet = { instance: number; seal: ArcField; messageSignature: ArcField; authenticationResults: ArcField };

function chainOf(arcFields: readonly ArcField[]): ReadSet[] | null {
  const byInstance = new Map<number, Partial<Record<ArcKey, ArcField>>>();
  for (const arc of arcFields) {
    // like mailauth, any instance that is a number other than 0 joins the chain: 1.5 or -1 then make it unreadable below
    if (typeof arc.instance !== "number" || !arc.instance) continue;
    const set = byInstance.get(arc.instance) ?? {};
    if (set[arc.key] !== undefined) return null;
    set[arc.key] = arc;
    byInstance.set(arc.instance, set);
  }
  const instances = [...byInstance.keys()].sort((a, b) => a - b);
  if (instances.length > MAX_ARC_INSTANCE) return null;
  const sets: ReadSet[] = [];
  for (const [index, instance] of instances.entries()) {
    const set = byInstance.get(instance)!;
    if (instance !== index + 1) return null;
    const seal = set["arc-seal"];
    const messageSignature = set["arc-message-signature"];
    const authenticationResults = set["arc-authentication-results"];
    if (seal === undefined || messageSignature === undefined || authenticationResults === undefined) return null;
    // RFC 8617 §5.2 step 3.C: cv=none for the first set, pass for every later one
    if (cvOf(seal) !== (index === 0 ? "none" : "pass")) return null;
    if (!supportedAlgorithm(seal.tags.get("a")) || !supportedAlgorithm(messageSignature.tags.get("a"))) return null;
    // §4.1.3: a seal has no h=; §4.1.2: a message signature never covers an ARC-Seal
    if (seal.tags.has("h")) return null;
    const signed = (messageSignature.tags.get("h") ?? "").replace(/\s+/g, "").trim().toLowerCase().split(":");
    if (signed.some((name) => name.trim() === "arc-seal")) return null;
    sets.push({ instance, seal, messageSignature, authenticationResults });
  }
  return sets;
}

function newestInstance(arcFields: readonly ArcField[]): { highest: number; latestCv: string | null } {
  let highest = 0;
  let latestCv: string | null = null;
  for (const arc of arcFields) {
    const instance = arc.instance;
    if (typeof instance !== "number" || !Number.isInteger(instance) || instance < 1) continue;
    if (instance > highest) {
      highest = instance;
      latestCv = null;
    }
    const cv = arc.tags.get("cv");
    if (instance === highest && arc.key === "arc-seal" && cv !== undefined) latestCv = cv.toLowerCase().trim();
  }
  return { highest, latestCv };
}

function cvOf(seal: ArcField): string {
  return (seal.tags.get("cv") ?? "").toLowerCase().trim();
}

// rsa-sha256 or ed25519-sha256, in any case: the only ARC algorithms (no sha1, RFC 8617 §4.1.3)
function supportedAlgorithm(value: string | undefined): boolean {
  if (!value || !/^[^-]+-[^-]+$/.test(value)) return false;
  const [signing, hashing] = value.toLowerCase().split("-");
  return (signing === "rsa" || signing === "ed25519") && hashing === "sha256";
}

function readArcField(field: HeaderField): ArcField {
  const key = field.key as ArcKey;
  const text = Buffer.from(field.line, "latin1").toString("utf8").trim();
  const value = text.slice(text.indexOf(":") + 1).trim();
  if (key === "arc-authentication-results") return { key, field, instance: resinfoInstance(value), tags: new Map() };
  const tags = tagList(value);
  const i = tags.get("i");
  return { key, field, instance: i === undefined ? undefined : Number(i), tags };
}

const FWS_EDGES = /^[ \t\r\n]+|[ \t\r\n]+$/g;
const squeeze = (text: string) => text.replace(/\s+/g, " ").trim();

/**
 * RFC 6376 §3.2 tag-list, read leniently as mailauth does: names in lower case, the last of a
 * repeated tag wins, and a part without "=" (after the first, which is not a tag to mailauth)
 * is a tag with an empty value that stands in for any real tag of that name.
 */
function tagList(value: string): Map<string, string> {
  const tags = new Map<string, string>();
  const keyOnly = new Set<string>();
  let sawKeyOnly = false;
  for (const spec of value.split(";")) {
    const trimmed = spec.replace(FWS_EDGES, "");
    if (trimmed === "") continue;
    const eq = spec.indexOf("=");
    if (eq < 0) {
      if (sawKeyOnly) keyOnly.add(squeeze(trimmed).toLowerCase());
      sawKeyOnly = true;
      continue;
    }
    const name = squeeze(spec.slice(0, eq).replace(FWS_EDGES, "")).toLowerCase();
    if (name !== "") tags.set(name, squeeze(spec.slice(eq + 1)));
  }
  keyOnly.delete("");
  for (const name of keyOnly) tags.set(name, "");
  return tags;
}

/**
 * The instance of an ARC-Authentication-Results as mailauth's RFC 8601 reader finds it: the
 * last resinfo part named i (comments and quoted strings skipped, the first part without "="
 * taken as the authserv-id), as a number.
 */
function resinfoInstance(value: string): number | undefined {
  const parts: { key: string; value: string; hasValue: boolean }[] = [{ key: "", value: "", hasValue: false }];
  let part = parts[0]!;
  let into: "key" | "value" = "key";
  let mode: "plain" | "comment" | "quoted" = "plain";
  let depth = 0;
  for (let at = 0; at < value.length; at++) {
    const char = value[at]!;
    if (mode === "comment") {
      if (char === "\\") at++;
      else if (char === "(") depth++;
      else if (char === ")" && --depth <= 0) mode = "plain";
      continue;
    }
    if (mode === "quoted") {
      part[into] += char;
      if (char === "\\" && at < value.length - 1) part[into] += value[++at];
      else if (char === '"') mode = "plain";
      continue;
    }
    if (char === "=" && into === "key") {
      into = "value";
      part.hasValue = true;
    } else if (char === ";") {
      part = { key: "", value: "", hasValue: false };
      parts.push(part);
      into = "key";
    } else if (char === "\\") {
      if (at < value.length - 1) part[into] += value[++at];
    } else if (char === "(") {
      mode = "comment";
      depth = 1;
    } else {
      if (char === '"') mode = "quoted";
      part[into] += char;
    }
  }
  const named = parts.map((entry) => ({ ...entry, key: squeeze(entry.key).toLowerCase() })).filter((entry) => entry.key !== "");
  const authservId = named.findIndex((entry) => !entry.hasValue);
  if (authservId >= 0) named.splice(authservId, 1);
  const instance = named.findLast((entry) => entry.key === "i");
  return instance === undefined ? undefined : Number(squeeze(instance.value));
}
