/**
 * The certificate and key our inbound STARTTLS presents (RFC 3207): read from the operator's
 * files (`--tls-cert`, `--tls-key`) and reloaded when they change, or, in dev mode, a
 * self-signed certificate generated once and kept in the data directory.
 *
 * Promises:
 * - `current()` always returns a pair whose key matches its certificate: a file that does not
 *   parse or a key that belongs to another certificate is refused with an error naming the file,
 *   at startup by throwing, on reload by keeping the previous pair and reporting the error (a
 *   certbot renewal writes the two files one after the other; the half-written moment must not
 *   take STARTTLS down);
 * - listeners hear about a new pair only when its content differs from the current one;
 * - watching is polling (fs.watchFile, which survives the rename-into-place that renewal tools
 *   and Kubernetes secret mounts do, where fs.watch loses the inode) and never keeps the
 *   process alive.
 *
 * smtp-server builds its TLS context once (`updateSecureContext()` in its constructor) and hands
 * `server.secureContext.get("*")` to every STARTTLS upgrade, so `server.updateSecureContext({
 * key, cert })` (smtp-server 3.21, dist/esm/smtp-server.js) swaps the certificate for every
 * upgrade that starts afterwards while sessions already encrypted keep theirs.
 * `applyTlsCredentials` wires that up.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, unwatchFile, watchFile, writeFileSync, type Stats } from "node:fs";
import { join } from "node:path";
import { createSecureContext } from "node:tls";
import { Worker } from "node:worker_threads";
import type { DevCertificateAnswer, DevCertificateRequest } from "./dev-certificate-thread.ts";

export interface TlsKeyPair {
  readonly key: string;
  readonly cert: string;
}

/** What a log line or `mailroute doctor` says about the certificate; never the key. */
export interface CertificateSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly dnsNames: readonly string[];
  readonly validTo: Date;
  readonly fingerprint256: string;
}

export type TlsChangeListener = (pair: TlsKeyPair, summary: CertificateSummary) => void;
export type TlsErrorListener = (error: TlsCredentialsError) => void;

export class TlsCredentialsError extends Error {
  override readonly name = "TlsCredentialsError";
  /** The file at fault. */
  readonly file: string;

  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.file = file;
  }
}

export interface TlsCredentialsOptions {
  certFile: string;
  keyFile: string;
  /** Polling interval; the lower bound keeps a typo (1 ms) from spinning on stat(). */
  intervalMs?: number;
  onError?: TlsErrorListener;
}

export const DEFAULT_WATCH_INTERVAL_MS = 5_000;
const MIN_WATCH_INTERVAL_MS = 50;
const MAX_WATCH_INTERVAL_MS = 300_000;

/** Read and check a certificate (with its chain) and its private key; throws TlsCredentialsError. */
export function loadKeyPair(certFile: string, keyFile: string): { pair: TlsKeyPair; summary: CertificateSummary } {
  const cert = readText(certFile, "TLS certificate");
  const key = readText(keyFile, "TLS key");
  let leaf: X509Certificate;
  try {
    // the first PEM block is the leaf; any that follow are the chain the client is sent
    leaf = new X509Certificate(cert);
  } catch (error) {
    throw new TlsCredentialsError(certFile, `TLS certificate "${certFile}": not a PEM certificate (${reason(error)})`, { cause: error });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    // an encrypted key lands here too: there is no one at the console to type its passphrase
    throw new TlsCredentialsError(keyFile, `TLS key "${keyFile}": not an unencrypted PEM private key (${reason(error)})`, { cause: error });
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new TlsCredentialsError(keyFile, `TLS key "${keyFile}" does not match the certificate in "${certFile}" (${leaf.subject.replace(/\n/g, ", ")})`);
  }
  try {
    // what smtp-server will do with them: catches what the checks above cannot (a broken chain block)
    createSecureContext({ key, cert });
  } catch (error) {
    throw new TlsCredentialsError(certFile, `TLS certificate "${certFile}" with key "${keyFile}": ${reason(error)}`, { cause: error });
  }
  return { pair: Object.freeze({ key, cert }), summary: summarize(leaf) };
}

export class TlsCredentials {
  readonly #certFile: string;
  readonly #keyFile: string;
  readonly #intervalMs: number;
  readonly #changeListeners = new Set<TlsChangeListener>();
  readonly #errorListeners = new Set<TlsErrorListener>();
  #pair: TlsKeyPair;
  #summary: CertificateSummary;
  #reloadQueued = false;
  #closed = false;
  readonly #onStat = (current: Stats, previous: Stats): void => {
    // watchFile also calls back when nothing changed but atime; compare what a rewrite changes
    if (current.mtimeMs === previous.mtimeMs && current.size === previous.size && current.ino === previous.ino) return;
    // cert and key pollers often fire in the same tick after a renewal: one reload for both
    if (this.#reloadQueued) return;
    this.#reloadQueued = true;
    setImmediate(() => {
      this.#reloadQueued = false;
      this.reload();
    });
  };

  /** Loads both files (throwing a TlsCredentialsError that names the bad one) and starts watching them. */
  static watch(options: TlsCredentialsOptions): TlsCredentials {
    return new TlsCredentials(options);
  }

  private constructor(options: TlsCredentialsOptions) {
    this.#certFile = options.certFile;
    this.#keyFile = options.keyFile;
    const requested = options.intervalMs ?? DEFAULT_WATCH_INTERVAL_MS;
    this.#intervalMs = Math.min(MAX_WATCH_INTERVAL_MS, Math.max(MIN_WATCH_INTERVAL_MS, requested));
    if (options.onError) this.#errorListeners.add(options.onError);
    const loaded = loadKeyPair(this.#certFile, this.#keyFile);
    this.#pair = loaded.pair;
    this.#summary = loaded.summary;
    for (const file of new Set([this.#certFile, this.#keyFile])) {
      watchFile(file, { interval: this.#intervalMs, persistent: false }, this.#onStat);
    }
  }

  current(): TlsKeyPair {
    return this.#pair;
  }

  get summary(): CertificateSummary {
    return this.#summary;
  }

  get files(): { certFile: string; keyFile: string } {
    return { certFile: this.#certFile, keyFile: this.#keyFile };
  }

  /** Called with each new pair; returns the unsubscribe function. */
  onChange(listener: TlsChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Called when a changed file cannot be used (the previous pair stays current). */
  onError(listener: TlsErrorListener): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  /** Reads the files now; true when a different valid pair became current. Never throws. */
  reload(): boolean {
    if (this.#closed) return false;
    let loaded: ReturnType<typeof loadKeyPair>;
    try {
      loaded = loadKeyPair(this.#certFile, this.#keyFile);
    } catch (error) {
      const failure = error instanceof TlsCredentialsError ? error : new TlsCredentialsError(this.#certFile, reason(error), { cause: error });
      for (const listener of this.#errorListeners) listener(failure);
      return false;
    }
    if (loaded.pair.cert === this.#pair.cert && loaded.pair.key === this.#pair.key) return false;
    this.#pair = loaded.pair;
    this.#summary = loaded.summary;
    for (const listener of this.#changeListeners) listener(loaded.pair, loaded.summary);
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const file of new Set([this.#certFile, this.#keyFile])) unwatchFile(file, this.#onStat);
    this.#changeListeners.clear();
    this.#errorListeners.clear();
  }
}

/** The one method of smtp-server's SMTPServer this needs. */
export interface SecureContextTarget {
  updateSecureContext(options: { key: string; cert: string }): void;
}

/**
 * Keeps `server`'s STARTTLS certificate equal to `credentials.current()` from now on. The server
 * must have been constructed with the current pair (so it never starts on smtp-server's built-in
 * localhost certificate). Returns the function that stops following.
 */
export function applyTlsCredentials(server: SecureContextTarget, credentials: TlsCredentials): () => void {
  return credentials.onChange((pair) => server.updateSecureContext({ key: pair.key, cert: pair.cert }));
}

// a dev certificate is regenerated this long before it expires, so a long-running dev box never serves an expired one
const DEV_RENEW_BEFORE_MS = 30 * 86_400_000;
const DEV_VALIDITY_MS = 397 * 86_400_000;

/**
 * Dev mode (no `--tls-cert`): a self-signed certificate for `hostname`, kept in
 * `<dataDir>/tls/` (key mode 0600) so that it stays the same across restarts (a client that
 * pinned it on first use keeps working). Regenerated when missing, broken, for another
 * hostname, or within 30 days of expiry. Senders on the Internet accept it: RFC 7435
 * opportunistic TLS does not authenticate the MX.
 */
export async function createDevCredentials(hostname: string, dataDir: string, options: { intervalMs?: number; onError?: TlsErrorListener; now?: () => Date } = {}): Promise<TlsCredentials> {
  const now = options.now ?? (() => new Date());
  const dir = join(dataDir, "tls");
  const certFile = join(dir, "dev-cert.pem");
  const keyFile = join(dir, "dev-key.pem");
  const name = hostname.toLowerCase().replace(/\.$/, "");
  if (!usableDevCertificate(certFile, keyFile, name, now())) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const notBeforeDate = new Date(now().getTime() - 3_600_000); // an hour of slack for clock skew
    // made on a thread of its own, only when a certificate is made: the pair is kept in the
    // data directory and reused by every later start (issue 11, RSS)
    const pems = await makeDevCertificate({ hostname: name, notBefore: notBeforeDate, notAfter: new Date(notBeforeDate.getTime() + DEV_VALIDITY_MS) });
    // key first, each through a rename: a crash in between leaves a mismatch, which the next
    // start regenerates, never a half-written file
    writeAtomically(keyFile, pems.key, 0o600);
    writeAtomically(certFile, pems.cert, 0o644);
  }
  return TlsCredentials.watch({ certFile, keyFile, intervalMs: options.intervalMs ?? 60_000, onError: options.onError });
}

const DEV_CERTIFICATE_THREAD = new URL("./dev-certificate-thread.ts", import.meta.url);

/** A self-signed pair, made on a short-lived thread (dev-certificate-thread.ts says why). */
function makeDevCertificate(request: DevCertificateRequest): Promise<{ cert: string; key: string }> {
  return new Promise((resolve, reject) => {
    const thread = new Worker(DEV_CERTIFICATE_THREAD, { workerData: request, name: "mailroute-dev-certificate" });
    let answered = false;
    thread.once("message", (answer: DevCertificateAnswer) => {
      answered = true;
      if ("error" in answer) reject(new Error(`dev certificate: ${answer.error}`));
      else resolve(answer);
    });
    thread.once("error", (error) => reject(new Error(`dev certificate: ${error.message}`)));
    thread.once("exit", (code) => {
      if (!answered) reject(new Error(`dev certificate: its thread exited (${code}) without one`));
    });
  });
}

function usableDevCertificate(certFile: string, keyFile: string, hostname: string, now: Date): boolean {
  try {
    const { summary } = loadKeyPair(certFile, keyFile);
    return summary.dnsNames.includes(hostname) && summary.validTo.getTime() - now.getTime() > DEV_RENEW_BEFORE_MS;
  } catch {
    return false;
  }
}

function writeAtomically(file: string, content: string, mode: number): void {
  const temporary = `${file}.${process.pid}.tmp`;
  // a leftover temporary file would keep its old mode: writeFileSync applies `mode` only on create
  rmSync(temporary, { force: true });
  writeFileSync(temporary, content, { mode, flag: "wx" });
  renameSync(temporary, file);
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new TlsCredentialsError(file, `${what} "${file}": cannot read (${(error as NodeJS.ErrnoException).code ?? reason(error)})`, { cause: error });
  }
}

function summarize(leaf: X509Certificate): CertificateSummary {
  const dnsNames = (leaf.subjectAltName ?? "")
    .split(/,\s*/)
    .filter((entry) => entry.startsWith("DNS:"))
    .map((entry) => entry.slice(4).toLowerCase());
  return Object.freeze({
    subject: leaf.subject.replace(/\n/g, ", "),
    issuer: leaf.issuer.replace(/\n/g, ", "),
    dnsNames: Object.freeze(dnsNames),
    validTo: leaf.validToDate,
    fingerprint256: leaf.fingerprint256,
  });
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
