/**
 * Rule actions in Cloudflare's Email Routing shape ({type, value[]}) and their validated,
 * routing-ready form. Validation happens here, when a rule is saved, so a typo in a
 * destination is an operator error and never a surprise for a sender.
 */
import { DestinationExpressionError, parseDestinationExpression } from "../routing/destination-expression.ts";
import type { RuleAction } from "../routing/routing-table.ts";
import { ValidationError } from "./validation-error.ts";

export interface CloudflareAction {
  type: string;
  value?: string[];
}

export interface CloudflareMatcher {
  type: "literal" | "all";
  field?: "to";
  value?: string;
}

const WORKER_NAME = /^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$/i;
const MAX_REASON = 300;

export function toRuleAction(actions: readonly CloudflareAction[], field = "actions"): RuleAction {
  if (!Array.isArray(actions) || actions.length !== 1) {
    throw new ValidationError(field, "exactly one action is required (forward, worker, drop or reject)", "required");
  }
  const action = actions[0]!;
  const value = action.value ?? [];
  switch (action.type) {
    case "forward": {
      if (value.length === 0) throw new ValidationError(`${field}[0].value`, "forward needs at least one destination address", "required");
      try {
        return { type: "forward", chains: parseDestinationExpression(value) };
      } catch (error) {
        if (error instanceof DestinationExpressionError) throw new ValidationError(`${field}[0].value`, error.message);
        throw error;
      }
    }
    case "drop":
      return { type: "drop" };
    case "reject": {
      const reason = (value[0] ?? "").trim();
      if (reason === "") throw new ValidationError(`${field}[0].value`, "reject needs a reason, e.g. \"This address no longer accepts mail\"", "required");
      if (reason.length > MAX_REASON) throw new ValidationError(`${field}[0].value`, `reason is longer than ${MAX_REASON} characters`);
      // The reason ends up in an SMTP reply line: CR/LF would let it inject a second reply.
      if (/[\u0000-\u001f\u007f]/.test(reason)) throw new ValidationError(`${field}[0].value`, "reason must be a single line without control characters");
      return { type: "reject", reason };
    }
    case "worker": {
      const script = (value[0] ?? "").trim();
      if (!WORKER_NAME.test(script)) throw new ValidationError(`${field}[0].value`, `"${script}" is not a worker name (letters, digits, - and _)`);
      return { type: "worker", script };
    }
    default:
      throw new ValidationError(`${field}[0].type`, `unknown action "${String(action.type)}" (expected forward, worker, drop or reject)`);
  }
}

export function fromRuleAction(action: RuleAction): CloudflareAction[] {
  switch (action.type) {
    case "forward":
      return [{ type: "forward", value: action.chains.map((chain) => chain.join(":")) }];
    case "drop":
      return [{ type: "drop" }];
    case "reject":
      return [{ type: "reject", value: [action.reason] }];
    case "worker":
      return [{ type: "worker", value: [action.script] }];
  }
}

export function describeAction(action: RuleAction): string {
  switch (action.type) {
    case "forward":
      return `forward to ${action.chains.map((chain) => chain.join(" (else ")+ ")".repeat(chain.length - 1)).join(" and ")}`;
    case "drop":
      return "accept and drop";
    case "reject":
      return `reject with "${action.reason}"`;
    case "worker":
      return `run Email Worker "${action.script}"`;
  }
}
