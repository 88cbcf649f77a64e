/**
 * Fetches a domain's MTA-STS policy file: HTTPS GET https://mta-sts.<domain>/.well-known/mta-sts.txt
 * (RFC 8461 §3.3), returning its text for the policy parser.
 *
 * Promises (RFC 8461 §3.3):
 * - the policy host's certificate must chain to a trusted root (Node's defaults plus `--ca-file`)
 *   and name the policy host as a DNS-ID; otherwise the fetch fails;
 * - only a 200 is a policy: a redirect is never followed, any other status fails;
 * - the body is cut off beyond `maxBytes` (64 KiB by default, the RFC's suggestion) and the whole
 *   request beyond `timeoutMs`, connect and TLS included, so a hostile policy host can cost us
 *   neither memory nor the sender's patience;
 * - no HTTP cache and no connection reuse: each fetch is its own verified connection;
 * - every failure is an MtaStsFetchError with a `reason`, for logs and TLSRPT.
 *
 * The policy host is found with ordinary DNS (`lookup`, Node's resolver by default). `connect`
 * overrides where a policy host is reached ("mta-sts.example.test" → "127.0.0.1:8443") without
 * changing which name the certificate must carry: that is how tests serve a policy from loopback.
 */
import { request } from "node:https";
import type { IncomingMessage } from "node:http";
import type { LookupFunction } from "node:net";
import { checkDnsIdentity, verifyingContext } from "./certificate-trust.ts";

export type MtaStsFetchFailure = "tls" | "http-status" | "too-large" | "timeout" | "network" | "aborted";

export class MtaStsFetchError extends Error {
  override readonly name = "MtaStsFetchError";
  readonly reason: MtaStsFetchFailure;
  readonly url: string;

  constructor(reason: MtaStsFetchFailure, url: string, detail: string, options?: { cause?: unknown }) {
    super(`${url}: ${detail}`, options);
    this.reason = reason;
    this.url = url;
  }
}

/** Returns the policy file's text; rejects with MtaStsFetchError. */
export type PolicyFetcher = (domain: string, options?: { signal?: AbortSignal }) => Promise<string>;

export interface PolicyFetcherOptions {
  /** Extra trust roots (PEM, from `--ca-file`), added to Node's defaults. */
  ca?: string | Buffer | readonly string[] | null;
  timeoutMs?: number;
  maxBytes?: number;
  /** Policy host name → "address:port" ("[::1]:8443" for IPv6) to connect to instead of DNS + 443. */
  connect?: ReadonlyMap<string, string>;
  /** Resolves the policy host when it has no `connect` entry; Node's dns.lookup by default. */
  lookup?: LookupFunction;
}

export const DEFAULT_POLICY_TIMEOUT_MS = 10_000;
export const MAX_POLICY_BYTES = 64 * 1024;
const POLICY_PATH = "/.well-known/mta-sts.txt";

export function createPolicyFetcher(options: PolicyFetcherOptions = {}): PolicyFetcher {
  const secureContext = verifyingContext(options.ca);
  const timeoutMs = options.timeoutMs ?? DEFAULT_POLICY_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? MAX_POLICY_BYTES;
  const overrides = new Map<string, { host: string; port: number }>();
  for (const [name, target] of options.connect ?? []) overrides.set(name.toLowerCase(), parseTarget(name, target));

  return function fetchMtaStsPolicy(domain, { signal } = {}) {
    const host = `mta-sts.${domain.toLowerCase().replace(/\.$/, "")}`;
    const url = `https://${host}${POLICY_PATH}`;
    const target = overrides.get(host);
    return new Promise<string>((resolve, reject) => {
      let settled = false;
      const finish = (error: MtaStsFetchError | null, body?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (error === null) return resolve(body ?? "");
        req.destroy();
        reject(error);
      };
      const onAbort = (): void => finish(new MtaStsFetchError("aborted", url, "fetch aborted", { cause: signal?.reason }));
      const timer = setTimeout(() => finish(new MtaStsFetchError("timeout", url, `no complete answer within ${timeoutMs} ms`)), timeoutMs);

      const req = request(
        {
          host: target?.host ?? host,
          port: target?.port ?? 443,
          path: POLICY_PATH,
          method: "GET",
          // the certificate is checked against the policy host even when `connect` points elsewhere
          servername: host,
          headers: { host, accept: "text/plain", "user-agent": "mailroute (MTA-STS)" },
          ...(secureContext !== undefined ? { secureContext } : {}),
          rejectUnauthorized: true,
          checkServerIdentity: checkDnsIdentity,
          minVersion: "TLSv1.2",
          // a fresh connection each time: nothing verified under other options is reused
          agent: false,
          ...(target === undefined && options.lookup !== undefined ? { lookup: options.lookup } : {}),
        },
        (response) => readBody(response, url, maxBytes, finish),
      );
      req.on("error", (error: NodeJS.ErrnoException) => finish(classify(error, url)));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      req.end();
    });
  };
}

function readBody(response: IncomingMessage, url: string, maxBytes: number, finish: (error: MtaStsFetchError | null, body?: string) => void): void {
  // RFC 8461 §3.3: "HTTP 3xx redirects MUST NOT be followed"; only 200 carries a policy
  if (response.statusCode !== 200) {
    response.resume();
    return finish(new MtaStsFetchError("http-status", url, `answered HTTP ${response.statusCode ?? "?"}${isRedirect(response.statusCode) ? " (redirects are not followed)" : ""}`));
  }
  // The media type (text/plain, RFC 8461 §3.2) is not enforced: policy hosts behind generic web
  // servers get it wrong, and the parser rejects anything that is not a policy anyway.
  const declared = Number(response.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.resume();
    return finish(new MtaStsFetchError("too-large", url, `policy is ${declared} bytes, more than ${maxBytes}`));
  }
  const chunks: Buffer[] = [];
  let size = 0;
  response.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) return finish(new MtaStsFetchError("too-large", url, `policy is more than ${maxBytes} bytes`));
    chunks.push(chunk);
  });
  response.on("end", () => finish(null, Buffer.concat(chunks).toString("utf8")));
  response.on("error", (error: NodeJS.ErrnoException) => finish(classify(error, url)));
  response.on("close", () => {
    if (!response.complete) finish(new MtaStsFetchError("network", url, "connection closed before the end of the policy"));
  });
}

function classify(error: NodeJS.ErrnoException, url: string): MtaStsFetchError {
  const code = error.code ?? "";
  // OpenSSL verification codes (CERT_HAS_EXPIRED, DEPTH_ZERO_SELF_SIGNED_CERT, …), ours and Node's
  const tls = /CERT|SELF_SIGNED|ISSUER|SIGNATURE|^ERR_TLS|^ERR_SSL|EPROTO/.test(code);
  return new MtaStsFetchError(tls ? "tls" : "network", url, `${tls ? "TLS" : "connection"} failed: ${error.message}${code ? ` (${code})` : ""}`, { cause: error });
}

function isRedirect(status: number | undefined): boolean {
  return status !== undefined && status >= 300 && status < 400;
}

function parseTarget(name: string, target: string): { host: string; port: number } {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(target) ?? /^([^:[\]]+):(\d+)$/.exec(target);
  const port = Number(match?.[2]);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`MTA-STS connect override "${name}": expected address:port, got "${target}"`);
  return { host: match[1] ?? "", port };
}
