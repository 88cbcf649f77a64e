/**
 * ValidationError: bad operator input, naming the field and saying why, so every front end
 * (CLI, API, dashboard) can present it without guessing. `code` is stable for scripts.
 */
/** `not_deployed`: the change names an Email Worker the account has not deployed. */
export type ValidationCode = "invalid" | "not_found" | "conflict" | "required" | "not_deployed";

export class ValidationError extends Error {
  readonly field: string;
  readonly code: ValidationCode;

  constructor(field: string, message: string, code: ValidationCode = "invalid") {
    super(`${field}: ${message}`);
    this.name = "ValidationError";
    this.field = field;
    this.code = code;
  }
}
