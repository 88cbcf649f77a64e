/**
 * Turns a failure of `mailroute start` into what went wrong and what to do, by cause rather
 * than by guess: a port another process holds (EADDRINUSE), a port this user may not bind
 * (EACCES below 1024), an address not on this machine, an unreadable or mismatched TLS
 * certificate, a database that does not answer or refuses us, a data directory we may not
 * write. Anything else is reported as it is, with no misleading hint.
 *
 * Promises: never prints a database password (URLs pass through the log redaction); only an
 * EADDRINUSE mentions another process holding the port.
 */
import { redactSecrets } from "../analytics/structured-log.ts";
import type { Settings } from "../config/settings.ts";
import { TlsCredentialsError } from "../smtp/tls-credentials.ts";
import { CliError } from "./cli-error.ts";
import { StartupError } from "./startup-error.ts";

const LISTENERS = {
  "smtp-listen": { what: "SMTP", portFlag: "--smtp-port", hostFlag: "--smtp-host" },
  "http-listen": { what: "HTTP", portFlag: "--http-port", hostFlag: "--http-host" },
  "https-listen": { what: "HTTPS", portFlag: "--https-port", hostFlag: "--http-host" },
  "metrics-listen": { what: "metrics", portFlag: "--metrics-port", hostFlag: "--metrics-host" },
} as const;

export function explainStartFailure(error: unknown, settings: Readonly<Settings>): CliError {
  if (error instanceof TlsCredentialsError) {
    return new CliError(`cannot use the TLS certificate: ${error.message}`, {
      hint: "check --tls-cert and --tls-key (MAILROUTE_TLS_CERT, MAILROUTE_TLS_KEY): PEM files readable by the user mailroute runs as, the key matching the certificate; leave both unset for a self-signed certificate, or use --acme-directory",
    });
  }
  if (error instanceof StartupError) return error.stage === "store" ? storeFailure(error, settings) : listenFailure(error, LISTENERS[error.stage]);
  const message = redactSecrets(error instanceof Error ? error.message : String(error));
  return new CliError(`cannot start: ${message}`);
}

function codeOf(error: unknown): string {
  // pg reports a refused connection to a name with several addresses as an AggregateError
  if (error instanceof AggregateError && error.errors.length > 0) return codeOf(error.errors[0]);
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause !== undefined && cause !== error ? codeOf(cause) : "";
}

function listenFailure(error: StartupError, listener: (typeof LISTENERS)[keyof typeof LISTENERS]): CliError {
  const { what, portFlag, hostFlag } = listener;
  const port = Number(error.target.slice(error.target.lastIndexOf(":") + 1));
  const code = codeOf(error.cause);
  switch (code) {
    case "EADDRINUSE":
      return new CliError(`cannot listen for ${what} on ${error.target}: the port is already in use`, {
        hint: `another process holds it (ss -ltnp 'sport = :${port}' shows which): stop it, or pass ${portFlag} with a free port`,
      });
    case "EACCES":
    case "EPERM":
      return new CliError(`cannot listen for ${what} on ${error.target}: permission denied`, {
        hint: port > 0 && port < 1024
          ? `ports below 1024 need CAP_NET_BIND_SERVICE: run mailroute from packaging/mailroute.service (AmbientCapabilities=CAP_NET_BIND_SERVICE) or the container image, or pass ${portFlag} 2525 and redirect port ${port} to it`
          : `this user may not listen there: pass ${portFlag} or ${hostFlag}`,
      });
    case "EADDRNOTAVAIL":
      return new CliError(`cannot listen for ${what} on ${error.target}: that address is not on this machine`, {
        hint: `pass ${hostFlag} with one of this machine's addresses (ip -brief address lists them), or :: for all of them`,
      });
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new CliError(`cannot listen for ${what} on ${error.target}: the host name does not resolve`, { hint: `pass ${hostFlag} with an IP address` });
    default:
      return new CliError(`cannot listen for ${what} on ${error.target}: ${redactSecrets(messageOf(error.cause))}`);
  }
}

function storeFailure(error: StartupError, settings: Readonly<Settings>): CliError {
  const code = codeOf(error.cause);
  const detail = redactSecrets(messageOf(error.cause));
  if (settings.database !== null) {
    const target = redactSecrets(settings.database);
    const hints: Record<string, string> = {
      ECONNREFUSED: "is PostgreSQL running and listening there? (pg_isready -d <url> checks); or fix --database (MAILROUTE_DATABASE)",
      ETIMEDOUT: "the server did not answer: check the host, the port and any firewall between, or fix --database",
      ENOTFOUND: "the database host name does not resolve: fix --database (MAILROUTE_DATABASE)",
      EAI_AGAIN: "the database host name could not be resolved right now: check DNS, or use an address in --database",
      "28P01": "the password was refused: fix the user and password in --database (or PGPASSWORD)",
      "28000": "PostgreSQL refused this user (pg_hba.conf): allow it, or connect as another user",
      "3D000": "the database does not exist: create it (createdb <name>) or fix --database",
    };
    return new CliError(detail.includes(target) ? `cannot open the database: ${detail}` : `cannot open the database ${target}: ${detail}`, { hint: hints[code] ?? "check --database (MAILROUTE_DATABASE) and that PostgreSQL is running" });
  }
  if (code === "EACCES" || code === "EPERM" || code === "EROFS" || /unable to open database file|readonly/i.test(detail)) {
    return new CliError(`cannot open the data directory ${settings.dataDir}: ${detail}`, {
      hint: "mailroute must be able to create and write it: chown it to the user mailroute runs as, or pass --data-dir (MAILROUTE_DATA_DIR)",
    });
  }
  return new CliError(`cannot open the store in ${settings.dataDir}: ${detail}`, { hint: "check --data-dir (MAILROUTE_DATA_DIR)" });
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(messageOf).join("; ");
  return error instanceof Error ? error.message || (error as { code?: string }).code || error.name : String(error);
}
