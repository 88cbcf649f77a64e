/**
 * ApiError: an HTTP error that knows how to present itself as Cloudflare's v4 envelope
 * (`{success:false, errors:[{code, message, source?}], messages:[], result:null}`), built
 * only from the API error catalogue. A core ValidationError becomes one here, keeping the
 * field it names (as `source.pointer`, JSON-pointer style, and at the start of the message).
 */
import { randomBytes } from "node:crypto";
import { ValidationError } from "../core/validation-error.ts";
import { apiErrors, type ApiErrorEntry, type ApiErrorName } from "./api-error-catalogue.ts";

export interface EnvelopeError {
  code: number;
  message: string;
  source?: { pointer: string };
}

function fill(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (match, key: string) => (key in values ? String(values[key]) : match));
}

/** `actions[0].value` → `/actions/0/value` */
export function fieldPointer(field: string): string {
  return `/${field.replace(/\[(\d+)\]/g, ".$1").split(".").filter((part) => part !== "").join("/")}`;
}

export class ApiError extends Error {
  readonly entry: ApiErrorEntry;
  readonly field: string | null;
  readonly headers: Record<string, string>;

  constructor(name: ApiErrorName, values: Record<string, string | number> = {}, options: { field?: string; headers?: Record<string, string> } = {}) {
    const entry = apiErrors[name];
    super(fill(entry.message, values));
    this.name = "ApiError";
    this.entry = entry;
    this.field = options.field ?? null;
    this.headers = options.headers ?? {};
  }

  get status(): number {
    return this.entry.status;
  }

  toEnvelope(): { success: false; errors: EnvelopeError[]; messages: []; result: null } {
    const error: EnvelopeError = { code: this.entry.code, message: this.message };
    if (this.field !== null) error.source = { pointer: fieldPointer(this.field) };
    return { success: false, errors: [error], messages: [], result: null };
  }

  static fromValidation(error: ValidationError, path: string): ApiError {
    if (error.code === "not_found") return new ApiError("NOT_FOUND", { path }, { field: error.field });
    if (error.code === "conflict") return new ApiError("CONFLICT", { message: error.message }, { field: error.field });
    if (error.code === "not_deployed") return new ApiError("WORKER_NOT_DEPLOYED", { message: error.message }, { field: error.field });
    return new ApiError("VALIDATION", { message: error.message }, { field: error.field });
  }

  static internal(): { error: ApiError; incident: string } {
    const incident = randomBytes(6).toString("hex");
    return { error: new ApiError("INTERNAL", { incident }), incident };
  }
}
