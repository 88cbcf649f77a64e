/**
 * `mailroute activity`: recent messages and what happened to them, with the same filters as the
 * activity API.
 */
import { usageError } from "./cli-error.ts";
import { parseCommand, type LeafSpec, type StoreFlags } from "./command-spec.ts";
import { withService } from "./open-configuration.ts";
import { type Output, emit, table } from "./command-output.ts";
import { ACTION } from "./action-flags.ts";

export const ACTIVITY_SPEC: LeafSpec = {
  name: "activity",
  summary: "recent messages and what happened to them (every account's without --account)",
  options: [
    ["--limit <n>", "how many, 1 to 10000", { default: "20" }],
    ["--since <ISO time>", "only messages received since then"],
    ["--outcome <outcome>", "forwarded, dropped, rejected, delivery_failed, deferred or worker"],
    ["--to <address>", "only messages to this recipient"],
    ["--from <address>", "only messages from this sender"],
  ],
  example: "mailroute activity --limit 50",
  store: true,
};

interface ActivityFlags extends StoreFlags {
  limit: string;
  since?: string;
  outcome?: string;
  to?: string;
  from?: string;
}

export async function activityCommand(argv: string[], output: Output): Promise<void> {
  const { values, usage } = parseCommand<ActivityFlags>(ACTIVITY_SPEC, argv);
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw usageError(`--limit "${values.limit}" is not a number from 1 to 10000`, usage);
  await withService(values, async (service) => {
    // Without --account the operator sees every account's mail.
    const events = await service.activity.recent({ limit, since: values.since, outcome: values.outcome, to: values.to, from: values.from, allAccounts: values.account === undefined });
    emit(
      output,
      values,
      events.map((event) => ({ ...event, detail: JSON.parse(event.detail) as unknown })),
      events.length === 0
        ? ["no messages yet"]
        : table([
            ["TIME", "FROM", "TO", "ACTION", "OUTCOME", "SPF", "DKIM", "DMARC", "SPAM", "REPLY"],
            ...events.map((e) => [e.received_at.slice(0, 19).replace("T", " "), e.mail_from || "<>", e.rcpt_to, e.action, e.outcome, e.spf ?? "-", e.dkim ?? "-", e.dmarc ?? "-", e.spam_score === null ? "-" : String(e.spam_score), e.reply_text ?? ""]),
          ]),
    );
  });
}
