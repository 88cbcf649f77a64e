/**
 * The certificates this installation presents, as `mailroute doctor` sees them: the STARTTLS
 * certificate of the MX (the same files `mailroute start` uses: --tls-cert, ACME's, or the
 * self-signed one) and, when we serve HTTPS for the policy host ourselves (ACME with
 * --https-port), the mta-sts.<zone> certificate; each checked as senders will (chain, name,
 * expiry), and the MTA-STS mode the server serves with them.
 *
 * Promises: reads only, never creates a certificate; the mode is computed exactly as the
 * running server computes it (resolveMtaStsMode), so doctor's `_mta-sts` id is the server's.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { certificateFiles } from "../acme/certificate-files.ts";
import type { Settings } from "../config/settings.ts";
import type { MtaStsMode } from "../core/zone-dns-records.ts";
import { loadCaFile } from "../delivery/certificate-trust.ts";
import { checkCertificate, EXPIRY_WARNING_DAYS, type CertificateVerdict } from "./certificate-check.ts";
import { mxCertificateFiles } from "./certificate-setup.ts";
import { resolveMtaStsMode } from "./mta-sts-mode.ts";

export interface ServedCertificate {
  /** The host name the certificate must be valid for. */
  name: string;
  purpose: string;
  ok: boolean;
  /** What is wrong and what to do; or, when ok, a note (expiry soon). */
  note: string | null;
  verdict: CertificateVerdict | null;
}

export interface ServedCertificates {
  certificates: ServedCertificate[];
  mode: MtaStsMode;
  allValid: boolean;
}

export async function checkServedCertificates(settings: Readonly<Settings>, zone: string): Promise<ServedCertificates> {
  const extraCa = settings.caFile === null ? [] : loadCaFile(settings.caFile);
  const mxFiles = mxCertificateFiles(settings);
  const fix = `get one that validates: --acme-directory letsencrypt (automatic; needs port 80 reachable), or --tls-cert/--tls-key with a certificate for ${settings.hostname} and its full chain`;
  const mx = await check(settings.hostname, "MX STARTTLS certificate (senders under MTA-STS enforce check it)", readPair(mxFiles.certFile, mxFiles.keyFile), extraCa, mxFiles.source === "files" ? "check --tls-cert and --tls-key" : `start mailroute once (it creates ${mxFiles.source === "acme" ? "a placeholder, then orders the certificate" : "a self-signed certificate"}), or ${fix}`, fix);
  const certificates = [mx];
  let policyHost: ServedCertificate | null = null;
  if (settings.acmeDirectory !== null && settings.httpsPort !== null) {
    const files = certificateFiles(join(settings.dataDir, "acme"), `mta-sts.${zone}`);
    policyHost = await check(`mta-sts.${zone}`, "MTA-STS policy host HTTPS certificate", readPair(files.certFile, files.keyFile) ?? readPair(mxFiles.certFile, mxFiles.keyFile), extraCa, "start mailroute with the zone routed: ACME orders it", "ACME orders it once the policy host name points here (the CNAME below)");
    certificates.push(policyHost);
  }
  const mode = resolveMtaStsMode(settings.mtaStsMode, mx, policyHost);
  return { certificates, mode, allValid: certificates.every((certificate) => certificate.ok) };
}

function readPair(certFile: string, keyFile: string): { cert: string; key: string } | null {
  try {
    return { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
  } catch {
    return null;
  }
}

async function check(name: string, purpose: string, pair: { cert: string; key: string } | null, extraCa: string[], whenMissing: string, fix: string): Promise<ServedCertificate> {
  if (pair === null) return { name, purpose, ok: false, note: `no certificate yet: ${whenMissing}`, verdict: null };
  let verdict: CertificateVerdict;
  try {
    verdict = await checkCertificate(pair, name, { extraCa });
  } catch (error) {
    return { name, purpose, ok: false, note: `cannot read the certificate (${(error as Error).message}): ${fix}`, verdict: null };
  }
  if (!verdict.ok) return { name, purpose, ok: false, note: `${verdict.problem}: ${fix}`, verdict };
  const soon = verdict.daysLeft < EXPIRY_WARNING_DAYS ? `expires in ${verdict.daysLeft} day(s) (${verdict.validTo.toISOString().slice(0, 10)}): renew it now` : null;
  return { name, purpose, ok: true, note: soon ?? `valid until ${verdict.validTo.toISOString().slice(0, 10)}, issued by ${verdict.issuer}`, verdict };
}
