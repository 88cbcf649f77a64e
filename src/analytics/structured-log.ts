/**
 * Structured logging: one JSON line per event ({event, ...fields}), never message bodies and
 * never secrets (callers pass only envelope data, codes and ids).
 *
 * Promises: the log stream reaches journald and log shipping, so whatever a caller passes by
 * mistake (an error text that quotes a header, a URL with a password) is redacted before it is
 * written: admin tokens (`mr_…`), `Bearer …` credentials, `password=`/`token=`/`secret=` style
 * pairs, the password of a `scheme://user:password@host` URL, and the whole value of a field
 * whose name says it is a secret (`token`, `password`, `authorization`, …). Redaction is a
 * safety net under "never pass secrets", not a licence to pass them.
 */
import type { Writable } from "node:stream";

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  log(level: LogLevel, event: string, fields?: Readonly<Record<string, unknown>>): void;
  child(fields: Readonly<Record<string, unknown>>): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const REDACTED = "[redacted]";

export function createLogger(options: { stream?: Writable; level?: LogLevel; base?: Record<string, unknown> } = {}): Logger {
  const stream = options.stream ?? process.stdout;
  const threshold = ORDER[options.level ?? "info"];
  const base = options.base ?? {};
  return {
    log(level, event, fields = {}) {
      if (ORDER[level] < threshold) return;
      stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...base, ...fields }, replacer)}\n`);
    },
    child(fields) {
      return createLogger({ stream, level: options.level ?? "info", base: { ...base, ...fields } });
    },
  };
}

// field names whose whole value is a secret, whatever it looks like
const SECRET_KEY = /^(?:.*[_-])?(?:token|password|passwd|secret|authorization|api[_-]?key|private[_-]?key)$/i;

const SECRET_PATTERNS: readonly [RegExp, string][] = [
  // our own token format (src/api/admin-token.ts): mr_ + base64url
  [/\bmr_[A-Za-z0-9_-]{20,}/g, `mr_${REDACTED}`],
  // RFC 6750 bearer credentials, and Basic ones alike
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, `$1 ${REDACTED}`],
  // key=value pairs in URLs, DSNs and command lines
  [/\b(password|passwd|pwd|token|secret|api[_-]?key)=("[^"]*"|'[^']*'|[^\s&;,"']+)/gi, `$1=${REDACTED}`],
  // userinfo of a URL (postgres://user:password@host)
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]+@/gi, `$1:${REDACTED}@`],
];

// A string none of SECRET_PATTERNS can match lacks all of these: one test instead of four
// replaces for the ids, addresses and host names that make up nearly every logged value (three
// lines per relayed message; the four passes were ~1 % of the main thread, issue 11).
const MAY_HOLD_SECRET = /mr_|=|:\/\/|bearer|basic/i;

/** `text` with every token-like value replaced by a marker. */
export function redactSecrets(text: string): string {
  if (!MAY_HOLD_SECRET.test(text)) return text;
  let result = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) result = result.replace(pattern, replacement);
  return result;
}

function replacer(key: string, value: unknown): unknown {
  if (key !== "" && SECRET_KEY.test(key) && value !== null && value !== undefined && typeof value !== "boolean") return REDACTED;
  if (typeof value === "string") return redactSecrets(value);
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  return value;
}

export const silentLogger: Logger = { log() {}, child() { return silentLogger; } };
