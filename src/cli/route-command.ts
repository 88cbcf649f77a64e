/**
 * `mailroute route <address>`: where mail for an address would go, and the exact SMTP reply a
 * sender would get (the mail core's own refusal mapping), without sending anything.
 */
import { describeAction } from "../core/rule-actions.ts";
import { loadRoutingTable } from "../core/routing-snapshot.ts";
import { CLI_OPERATOR } from "../core/service-context.ts";
import { createServices } from "../core/services.ts";
import { resolveRecipient } from "../routing/resolve-recipient.ts";
import { rcptReplyFor } from "../mail/recipient-planner.ts";
import { replies } from "../mail/reply-catalogue.ts";
import { SmtpReply } from "../mail/smtp-reply.ts";
import { DEFAULT_ACCOUNT_ID } from "../store/open-store.ts";
import { parseCommand, type LeafSpec, type StoreFlags } from "./command-spec.ts";
import { withService } from "./open-configuration.ts";
import { type Output, emit, table, need } from "./command-output.ts";

export const ROUTE_SPEC: LeafSpec = { name: "route", args: "<address>", summary: "explain where mail for an address would go, without sending", example: "mailroute route hello+news@example.com", store: true };

export async function routeCommand(argv: string[], output: Output): Promise<void> {
  const { operands, values, usage } = parseCommand<StoreFlags>(ROUTE_SPEC, argv);
  const address = need(operands, 0, "address", usage);
  await withService(values, async (_service, store) => {
    const table = await loadRoutingTable(store.db);
    const decision = resolveRecipient(address, table);
    // A running server has the worker runtime (start always builds it), so a worker rule is
    // accepted at RCPT TO; whether the script is deployed decides what happens after DATA.
    const reply = rcptReplyFor(address, decision, { workers: true });
    let afterData: string | null = null;
    if (decision.kind === "route" && decision.action.type === "worker") {
      const script = decision.action.script;
      const account = table.zones.get(decision.zone)?.account ?? DEFAULT_ACCOUNT_ID;
      const deployed = await createServices(store).forAccount({ account, actor: CLI_OPERATOR }).workers.deployedNames();
      afterData = deployed.has(script.toLowerCase())
        ? `accepted at RCPT TO; after DATA the message is handed to Email Worker "${script}", and the sender gets its answer (forwarded, replied to or rejected by the worker)`
        : `accepted at RCPT TO, then refused after DATA with "${new SmtpReply(replies.WORKER_NOT_DEPLOYED, { address, script }).line}" (mailroute worker deploy … --name ${script})`;
    }
    const lines: string[] = [address];
    if (decision.kind === "route") {
      const zone = table.zones.get(decision.zone)!;
      lines.push(`  domain:  ${zone.name} (sub-addressing ${zone.supportSubaddress ? "on" : "off"}${zone.dotInsensitive ? ", dot-insensitive" : ""})`);
      const how = { exact: "the rule for this exact address", "subaddress-base": "the rule for the address without its +detail", "catch-all": "the domain's catch-all" }[decision.matched];
      lines.push(`  matched: ${how} ("${decision.ruleName}")`);
      lines.push(`  action:  ${describeAction(decision.action)}`);
    }
    lines.push(
      afterData !== null
        ? `  result:  ${afterData}`
        : reply === null
        ? `  result:  accepted at RCPT TO; ${decision.kind === "route" && decision.action.type === "drop" ? "the message is accepted and discarded" : "relayed in-session; the sender gets the destination's answer"}`
        : `  result:  refused at RCPT TO with "${reply.line}"`,
    );
    emit(output, values, { decision, reply: reply?.line ?? null, ...(afterData === null ? {} : { result: afterData }) }, lines);
  });
}

// ── activity: where did it go ───────────────────────────────────────────────
