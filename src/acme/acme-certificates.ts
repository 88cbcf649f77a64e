/**
 * Automatic certificates (RFC 8555) through `acme-client`: one certificate per host name we
 * present — the MX host name (STARTTLS) and, when we serve HTTPS, mta-sts.<zone> for each
 * routed zone — validated with HTTP-01 on the HTTP port, kept in `<data-dir>/acme/`, renewed
 * before expiry.
 *
 * Promises:
 * - files are written whole (temporary file, then rename), keys and the account key 0600, so
 *   the TlsCredentials watcher (which polls the files and reloads on change) never reads half a
 *   certificate, and a crash leaves the previous certificate in place;
 * - a certificate is ordered when missing, for other names, unreadable, or within
 *   `renewBeforeMs` of expiry (default 30 days, as Let's Encrypt advises for 90-day
 *   certificates); checks run at start and every `checkEveryMs` (12 h);
 * - a failed order is logged with the CA's words and retried at the next check, never thrown
 *   into the service: the previous certificate (or the self-signed placeholder) stays in use;
 * - one order at a time (CAs rate-limit accounts; the HTTP-01 store is shared).
 */
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { Agent } from "node:https";
import { getCACertificates } from "node:tls";
import { join } from "node:path";
import acme from "acme-client";
import type { Logger } from "../analytics/structured-log.ts";
import { certificateFiles } from "./certificate-files.ts";
import type { HttpChallenges } from "./http-challenges.ts";

export { certificateFiles, type CertificateFiles } from "./certificate-files.ts";

export interface AcmeCertificatesOptions {
  directoryUrl: string;
  email: string | null;
  /** `<data-dir>/acme` */
  dir: string;
  /** The names that need a certificate now (evaluated at every check). */
  names: () => readonly string[];
  challenges: HttpChallenges;
  /** Extra trust roots for the CA's own HTTPS (a private or test CA; --ca-file). */
  extraCa?: readonly string[];
  logger: Logger;
  renewBeforeMs?: number;
  checkEveryMs?: number;
}

export const DEFAULT_RENEW_BEFORE_MS = 30 * 86_400_000;
const DEFAULT_CHECK_EVERY_MS = 12 * 3_600_000;
const RETRY_AFTER_FAILURE_MS = 15 * 60_000;

export class AcmeCertificates {
  readonly #options: AcmeOptionsResolved;
  readonly #listeners = new Set<(name: string) => void>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #closed = false;
  #retry: NodeJS.Timeout | null = null;

  constructor(options: AcmeCertificatesOptions) {
    this.#options = {
      ...options,
      renewBeforeMs: options.renewBeforeMs ?? DEFAULT_RENEW_BEFORE_MS,
      checkEveryMs: options.checkEveryMs ?? DEFAULT_CHECK_EVERY_MS,
    };
    if (options.extraCa !== undefined && options.extraCa.length > 0) {
      // acme-client talks to the CA through its own axios instance: trust the extra roots there
      acme.axios.defaults.httpsAgent = new Agent({ ca: [...getCACertificates("default"), ...options.extraCa] });
    }
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  }

  /** Checks now and then every `checkEveryMs`. */
  start(): void {
    void this.checkNow();
    this.#timer = setInterval(() => void this.checkNow(), this.#options.checkEveryMs);
    this.#timer.unref();
  }

  /** Called with the name whose certificate was just written. */
  onIssued(listener: (name: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The current certificate and key of `name`, or null when there is none yet. */
  pair(name: string): { cert: string; key: string } | null {
    const files = certificateFiles(this.#options.dir, name);
    try {
      return { cert: readFileSync(files.certFile, "utf8"), key: readFileSync(files.keyFile, "utf8") };
    } catch {
      return null;
    }
  }

  /** Orders what is missing or due; resolves when done (never rejects). */
  checkNow(): Promise<void> {
    this.#running ??= this.#checkAll().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** Stops checking; waits (at most `waitMs`) for an order in flight, so nothing outlives the service. */
  async close(waitMs = 15_000): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    if (this.#retry !== null) clearTimeout(this.#retry);
    if (this.#running === null) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#running, new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  async #checkAll(): Promise<void> {
    for (const name of this.#options.names()) {
      if (this.#closed) return;
      const due = this.#dueReason(name);
      if (due === null) continue;
      try {
        await this.#order(name, due);
      } catch (error) {
        // sooner than the next regular check: a CA outage or a DNS change in progress is often brief
        if (this.#retry === null && !this.#closed) {
          this.#retry = setTimeout(() => {
            this.#retry = null;
            void this.checkNow();
          }, Math.min(this.#options.checkEveryMs, RETRY_AFTER_FAILURE_MS));
          this.#retry.unref();
        }
        this.#options.logger.log("warn", "acme_order_failed", { name, reason: due, error, hint: `the CA must reach http://${name}/.well-known/acme-challenge/ on port 80 (--http-port, or a redirect to it); retried at the next check` });
      }
    }
  }

  #dueReason(name: string): string | null {
    const pair = this.pair(name);
    if (pair === null) return "missing";
    try {
      const leaf = new X509Certificate(pair.cert);
      if (leaf.checkHost(name, { subject: "never" }) === undefined) return "other-names";
      if (leaf.validToDate.getTime() - Date.now() < this.#options.renewBeforeMs) return "expiring";
      return null;
    } catch {
      return "unreadable";
    }
  }

  async #order(name: string, reason: string): Promise<void> {
    const { logger, challenges } = this.#options;
    logger.log("info", "acme_order", { name, reason, directory: this.#options.directoryUrl });
    const client = new acme.Client({ directoryUrl: this.#options.directoryUrl, accountKey: this.#accountKey() });
    // RSA 2048, made by Node: every SMTP client that does TLS at all can use it. (acme-client's
    // CSR code needs one copy of @peculiar/asn1-schema: package.json overrides dedupe it, as
    // mailauth's @postalsys/vmc pins an older one exactly)
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const [key, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] }, rsa);
    const cert = await client.auto({
      csr,
      ...(this.#options.email === null ? {} : { email: this.#options.email }),
      termsOfServiceAgreed: true,
      challengePriority: ["http-01"],
      // the CA checks reachability itself; acme-client's own pre-check would fetch port 80 of
      // the name through this machine's resolver, which proves nothing about the CA's view
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => challenges.set(challenge.token, keyAuthorization),
      challengeRemoveFn: async (_authz, challenge) => challenges.delete(challenge.token),
    });
    const files = certificateFiles(this.#options.dir, name);
    mkdirSync(join(this.#options.dir, "certs", name), { recursive: true, mode: 0o700 });
    writeAtomically(files.keyFile, key.toString(), 0o600);
    writeAtomically(files.certFile, cert, 0o644);
    const leaf = new X509Certificate(cert);
    logger.log("info", "acme_issued", { name, issuer: leaf.issuer.replace(/\n/g, ", "), valid_to: leaf.validToDate.toISOString() });
    for (const listener of this.#listeners) listener(name);
  }

  #accountKey(): string {
    const file = join(this.#options.dir, "account-key.pem");
    try {
      return readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    writeAtomically(file, privateKey.export({ type: "pkcs8", format: "pem" }).toString(), 0o600);
    return readFileSync(file, "utf8");
  }
}

type AcmeOptionsResolved = AcmeCertificatesOptions & { renewBeforeMs: number; checkEveryMs: number };

function writeAtomically(file: string, content: string, mode: number): void {
  const temporary = `${file}.${process.pid}.tmp`;
  rmSync(temporary, { force: true });
  writeFileSync(temporary, content, { mode, flag: "wx" });
  renameSync(temporary, file);
}
