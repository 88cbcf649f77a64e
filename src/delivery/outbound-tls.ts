/**
 * How the outbound SMTP client (nodemailer's SMTPConnection) applies a TLS requirement from
 * `tlsRequirementFor` (mta-sts-policy.ts), and how a failure to meet it is reported.
 *
 * Promises:
 * - opportunistic (no policy, `none`, `testing`): STARTTLS when offered, certificate not
 *   checked, plain text when STARTTLS is absent or fails (RFC 3207 §4.1, RFC 7435);
 * - required (`enforce`, RFC 8461 §4.2, §5): STARTTLS or nothing, TLS 1.2 or later, a
 *   certificate chaining to Node's roots plus `--ca-file` and naming the MX host as a DNS-ID.
 *   `opportunisticTLS` must be false: with it nodemailer answers a refused STARTTLS by carrying
 *   on in plain text even under `requireTLS`;
 * - a connection that fails a requirement is a TEMPORARY failure, 4.7.x (RFC 8461 §5.1: the
 *   sender retries, and the next MX is tried first), never the permanent failure its reply code
 *   may suggest (a server without STARTTLS answers it with 500).
 */
import type { ConnectionOptions, SecureContext } from "node:tls";
import { checkDnsIdentity } from "./certificate-trust.ts";
import type { TlsRequirement } from "./mta-sts-policy.ts";

/** What to spread into the SMTPConnection options. */
export interface SmtpTlsOptions {
  requireTLS: boolean;
  opportunisticTLS: boolean;
  ignoreTLS: false;
  servername: string;
  tls: ConnectionOptions;
}

type Connectable = Exclude<TlsRequirement, { refuse: string }>;

/**
 * SMTPConnection options for `requirement`. `trust` is `verifyingContext(--ca-file)`
 * (certificate-trust.ts), built once at startup; undefined means Node's default roots.
 */
export function smtpTlsOptions(requirement: Connectable, trust?: SecureContext): SmtpTlsOptions {
  if (!requirement.requireTls) {
    return {
      requireTLS: false,
      opportunisticTLS: true,
      ignoreTLS: false,
      servername: requirement.servername,
      // RFC 7435: an unverified TLS session still beats the plain text that is the alternative
      tls: { rejectUnauthorized: false, minVersion: "TLSv1.2", servername: requirement.servername },
    };
  }
  return {
    requireTLS: true,
    opportunisticTLS: false,
    ignoreTLS: false,
    servername: requirement.servername,
    tls: {
      rejectUnauthorized: requirement.verifyCertificate,
      minVersion: "TLSv1.2",
      servername: requirement.servername,
      // the shared context carries the roots (and TLS 1.2 minimum): no per-connection parse of them
      ...(trust !== undefined ? { secureContext: trust } : {}),
      ...(requirement.verifyCertificate ? { checkServerIdentity: checkDnsIdentity } : {}),
    },
  };
}

/**
 * Part of the pool key: a connection verified for one MX name may serve any later message that
 * needs the same, and an unverified one must never serve a message that needs verification.
 */
export function tlsPoolKey(requirement: Connectable): string {
  return requirement.requireTls ? `verified:${requirement.servername}` : "opportunistic";
}

export type TlsPolicyFailureKind = "mx-not-listed" | "starttls-unavailable" | "tls-failed" | "not-encrypted";

/** A destination's TLS policy could not be met on this MX: temporary, try the next MX. */
export class TlsPolicyError extends Error {
  override readonly name = "TlsPolicyError";
  readonly code = "ETLSPOLICY";
  readonly kind: TlsPolicyFailureKind;
  /** The MX host name. */
  readonly exchange: string;
  readonly enhanced: "4.7.4" | "4.7.5";

  constructor(kind: TlsPolicyFailureKind, exchange: string, detail: string, options?: { cause?: unknown }) {
    super(`${describe(kind, exchange)}${detail ? `: ${detail}` : ""}`, options);
    this.kind = kind;
    this.exchange = exchange;
    // RFC 3463: X.7.4 security features (STARTTLS, an acceptable MX) not supported,
    // X.7.5 cryptographic failure (handshake or certificate)
    this.enhanced = kind === "tls-failed" ? "4.7.5" : "4.7.4";
  }
}

function describe(kind: TlsPolicyFailureKind, exchange: string): string {
  switch (kind) {
    case "mx-not-listed":
      return `MX ${exchange} is not listed in the destination's MTA-STS policy`;
    case "starttls-unavailable":
      return `MX ${exchange} does not offer STARTTLS`;
    case "tls-failed":
      return `TLS to MX ${exchange} failed`;
    case "not-encrypted":
      return `session with MX ${exchange} is not encrypted`;
  }
}

/** The SMTPConnection state nodemailer keeps: `upgrading` is true from STARTTLS's 220 until the handshake completes. */
export interface ConnectionTlsState {
  readonly secure?: boolean;
  readonly upgrading?: boolean;
}

/**
 * Classifies an error from connecting (greeting, EHLO, STARTTLS) under `requirement`: a
 * TlsPolicyError when the requirement is what failed, null when it is an ordinary failure
 * (refused, timed out, 421) to be handled as before. Call it only for connect-phase errors.
 */
export function tlsPolicyFailure(error: unknown, requirement: Connectable, connection: ConnectionTlsState): TlsPolicyError | null {
  if (!requirement.requireTls) return null;
  const failure = error as { code?: unknown; command?: unknown; response?: unknown; message?: unknown } | null;
  const message = typeof failure?.message === "string" ? failure.message : String(error);
  // nodemailer sends STARTTLS under requireTLS even when not advertised; a refusal is "ETLS" at STARTTLS
  if (failure?.code === "ETLS" && failure.command === "STARTTLS" && typeof failure.response === "string") {
    return new TlsPolicyError("starttls-unavailable", requirement.servername, failure.response.trim(), { cause: error });
  }
  // handshake or certificate failure: nodemailer reports it as ESOCKET, overwriting Node's code,
  // so the connection state is what tells it apart from a dropped TCP connection
  if (failure?.code === "ETLS" || connection.upgrading === true) {
    return new TlsPolicyError("tls-failed", requirement.servername, message.replace(/^Error initiating TLS - /, ""), { cause: error });
  }
  return null;
}

/**
 * After a successful connect: under a requirement the session must be encrypted. Defence in
 * depth against any client path that carries on in plain text; returns the error to throw.
 */
export function unmetTlsRequirement(requirement: Connectable, connection: ConnectionTlsState): TlsPolicyError | null {
  if (!requirement.requireTls || connection.secure === true) return null;
  return new TlsPolicyError("not-encrypted", requirement.servername, "");
}
