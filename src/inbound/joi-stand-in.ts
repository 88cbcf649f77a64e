/**
 * A stand-in for joi where mailauth uses it (src/inbound/mailauth-stand-ins.ts puts it in the
 * CommonJS cache): two schemas built when mailauth loads and checked on every message —
 * `Joi.string().base64({ paddingRequired: false })` for a DKIM key record's p= value (lib/tools.js)
 * and `Joi.string().domain({ allowUnicode: false, tlds: false })` for the domain SPF evaluates
 * (lib/spf/index.js). joi 18 and its @hapi helpers were ~1.6 MiB of the SMTP thread's heap for
 * those two answers (issue 11, RSS).
 *
 * Promises: for those two schemas, `validate` answers as joi 18 does — `{ value }`, or `{ value,
 * error }` with joi's message, name and details — for any input: undefined passes (joi's schemas
 * are optional), another non-string and the empty string fail as joi's string type fails them; the domain check is the one joi itself calls
 * (@hapi/address's isDomainValid, with the options joi passes it); base64 is RFC 4648's alphabet
 * in groups of four, the last group's padding optional. test/inbound/joi-stand-in.test.ts holds
 * both against joi on generated and edge-case input. Anything else asked of it — another type, rule
 * or option — is handed to the real joi, loaded then, so behaviour never changes. Written by
 * hand: joi has no smaller build, and mailauth offers no way to skip the checks.
 */

/** joi's ValidationError, as mailauth sees it (it reads `error`, and passes it on as details). */
export interface JoiLikeError extends Error {
  isJoi: true;
  details: { message: string; path: string[]; type: string; context: { label: string; value: unknown } }[];
  _original: unknown;
}

export interface JoiLikeSchema {
  validate(value: unknown): { value: unknown; error?: JoiLikeError };
}

export type RealJoi = Record<string, unknown> & { string(): Record<string, (...args: unknown[]) => unknown> };
export type DomainCheck = (domain: string, options: { allowUnicode: boolean; tlds: boolean }) => boolean;

// groups of four; the last may be two or three characters, with or without its padding
const BASE64_UNPADDED_OR_PADDED = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

function failure(value: unknown, type: string, text: string): { value: unknown; error: JoiLikeError } {
  const message = `"value" ${text}`;
  const error = Object.assign(new Error(message), {
    name: "ValidationError",
    isJoi: true as const,
    details: [{ message, path: [], type, context: { label: "value", value } }],
    _original: value,
  });
  return { value, error };
}

function stringSchema(rule: (text: string) => { value: unknown; error?: JoiLikeError }): JoiLikeSchema {
  return {
    validate(value) {
      // a joi schema is optional unless made required: no value passes
      if (value === undefined) return { value };
      if (typeof value !== "string") return failure(value, "string.base", "must be a string");
      if (value === "") return failure(value, "string.empty", "is not allowed to be empty");
      return rule(value);
    },
  };
}

function sameOptions(given: unknown, expected: Record<string, unknown>): boolean {
  if (typeof given !== "object" || given === null) return false;
  const keys = Object.keys(given);
  return keys.length === Object.keys(expected).length && keys.every((key) => (given as Record<string, unknown>)[key] === expected[key]);
}

/**
 * joi's exports as mailauth uses them: `string()` answers the two schemas above itself; every
 * other export, method or option goes to `loadJoi()`'s real joi.
 */
export function joiStandIn(loadJoi: () => RealJoi, loadDomainCheck: () => DomainCheck): Record<string, unknown> {
  const string = () => {
    const builder: Record<string, (...args: unknown[]) => unknown> = {
      base64(options?: unknown) {
        if (!sameOptions(options, { paddingRequired: false })) return loadJoi().string().base64!(options);
        return stringSchema((text) => (BASE64_UNPADDED_OR_PADDED.test(text) ? { value: text } : failure(text, "string.base64", "must be a valid base64 string")));
      },
      domain(options?: unknown) {
        if (!sameOptions(options, { allowUnicode: false, tlds: false })) return loadJoi().string().domain!(options);
        const isDomainValid = loadDomainCheck();
        return stringSchema((text) => (isDomainValid(text, { allowUnicode: false, tlds: false }) ? { value: text } : failure(text, "string.domain", "must contain a valid domain name")));
      },
    };
    return new Proxy(builder, {
      get: (target, name) => {
        if (typeof name === "string" && Object.hasOwn(target, name)) return target[name];
        const schema = loadJoi().string() as Record<string | symbol, unknown>;
        const member = schema[name];
        return typeof member === "function" ? member.bind(schema) : member;
      },
    });
  };
  return new Proxy({ string } as Record<string, unknown>, {
    get: (target, name) => (name === "string" ? target.string : loadJoi()[name as string]),
    has: (_target, name) => name === "string" || name in loadJoi(),
  });
}
