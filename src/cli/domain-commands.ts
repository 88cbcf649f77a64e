/**
 * `mailroute domain add|list|remove|enable|disable|set`: the domains routed here and their
 * inbound policy, signing and delivery mode, through core/zones (validated, audited, versioned).
 */
import { describeAction } from "../core/rule-actions.ts";
import { usageError } from "./cli-error.ts";
import { parseCommand, type FamilySpec, type FlagSpec, type StoreFlags } from "./command-spec.ts";
import { confirmRemoval } from "./confirm-removal.ts";
import { withService } from "./open-configuration.ts";
import { type Output, emit, need, onOff, table, YES, yes } from "./command-output.ts";

const SWITCHES = [
  ["subaddressing", "subaddressing", "supportSubaddress"],
  ["dot-insensitive", "dotInsensitive", "dotInsensitive"],
  ["enforce-dmarc", "enforceDmarc", "enforceDmarc"],
  ["require-auth", "requireAuth", "requireAuth"],
  ["reject-quarantine", "rejectQuarantine", "rejectQuarantine"],
  ["sign-outbound", "signOutbound", "signOutbound"],
] as const;

export const DOMAIN_SPEC: FamilySpec = {
  name: "domain",
  summary: "the domains routed here",
  subcommands: [
    { name: "add", args: "<domain>", summary: "route a domain here", options: [["--subaddressing", "route user+tag@ to user@"], ["--dot-insensitive", "ignore dots in the local part"]], example: "mailroute domain add example.com --subaddressing", store: true },
    { name: "list", summary: "list domains", example: "mailroute domain list", store: true },
    { name: "remove", args: "<domain>", summary: "stop routing a domain, deleting its rules and catch-all (asks first)", options: [YES], example: "mailroute domain remove example.com --yes", store: true },
    { name: "enable", args: "<domain>", summary: "turn routing for a domain on", example: "mailroute domain enable example.com", store: true },
    { name: "disable", args: "<domain>", summary: "turn routing for a domain off (mail is refused)", example: "mailroute domain disable example.com", store: true },
    {
      name: "set",
      args: "<domain>",
      summary: "change a domain's settings and inbound policy",
      options: [...SWITCHES.flatMap(([flag]): FlagSpec[] => [[`--${flag}`, `turn ${flag} on`], [`--no-${flag}`, `turn ${flag} off`]]), ["--spam-threshold <0-5|off>", "refuse mail scoring above this"], ["--delivery <relay|queue>", "relay: in-session, the sender hears the destination (default); queue: deferred mail is stored and retried"]],
      example: "mailroute domain set example.com --enforce-dmarc --spam-threshold 4",
      store: true,
    },
  ],
};

interface DomainFlags extends StoreFlags {
  subaddressing?: boolean;
  dotInsensitive?: boolean;
  enforceDmarc?: boolean;
  requireAuth?: boolean;
  rejectQuarantine?: boolean;
  signOutbound?: boolean;
  spamThreshold?: string;
  yes?: boolean;
}

export async function domainCommand(argv: string[], output: Output): Promise<void> {
  const { verb, operands, values, usage } = parseCommand<DomainFlags>(DOMAIN_SPEC, argv);
  const positionals = [verb, ...operands];
  await withService(values, async (service) => {
    switch (verb) {
      case "add": {
        const zone = await service.zones.create(need(positionals, 1, "domain", usage), {
          supportSubaddress: values.subaddressing === true,
          dotInsensitive: values.dotInsensitive === true,
        });
        emit(output, values, zone, [`added domain ${zone.name} (sub-addressing ${zone.supportSubaddress ? "on" : "off"})`, `next: point its MX record at this server, then add a destination and a rule`]);
        return;
      }
      case "list": {
        const zones = await service.zones.all();
        emit(output, values, zones, zones.length === 0 ? ["no domains yet: mailroute domain add example.com"] : table([["DOMAIN", "ENABLED", "SUBADDRESSING", "DOT-INSENSITIVE"], ...zones.map((z) => [z.name, yes(z.enabled), yes(z.supportSubaddress), yes(z.dotInsensitive)])]));
        return;
      }
      case "remove": {
        const name = need(positionals, 1, "domain", usage);
        const [rules, catchAll] = await Promise.all([service.rules.all({ zone: name }), service.catchAll.get(name)]);
        const affected = [
          ...rules.map((r) => `rule for ${r.matchers[0]?.value ?? r.name}: ${describeAction(r.action)} (deleted)`),
          ...(catchAll.modified === null ? [] : [`catch-all: ${describeAction(catchAll.action)} (deleted)`]),
        ];
        if (affected.length > 0) await confirmRemoval({ action: `remove domain ${name}`, affected, yes: values.yes === true, command: `mailroute domain remove ${name}` }, output);
        const zone = await service.zones.remove(name);
        emit(output, values, zone, [`removed domain ${zone.name} with its rules and catch-all`]);
        return;
      }
      case "enable":
      case "disable": {
        const zone = await service.zones.update(need(positionals, 1, "domain", usage), { enabled: verb === "enable" });
        emit(output, values, zone, [`${verb}d email routing for ${zone.name}`]);
        return;
      }
      case "set": {
        const changes: Record<string, boolean | number | string | null> = {};
        for (const [flag, name, key] of SWITCHES) {
          // commander keeps the last of --x and --no-x: both given is a mistake to name, not to guess
          if (argv.includes(`--${flag}`) && argv.includes(`--no-${flag}`)) throw usageError(`--${flag} and --no-${flag} contradict each other`, usage);
          const value = values[name];
          if (value !== undefined) changes[key] = value;
        }
        const threshold = values.spamThreshold;
        if (typeof threshold === "string") {
          const number = Number(threshold);
          if (threshold !== "off" && (threshold.trim() === "" || !Number.isFinite(number))) throw usageError(`--spam-threshold "${threshold}" is not a score from 0 to 5 or "off"`, usage);
          changes.spamThreshold = threshold === "off" ? null : number;
        }
        const delivery = (values as Record<string, unknown>)["delivery"];
        if (typeof delivery === "string") {
          if (delivery !== "relay" && delivery !== "queue") throw usageError(`--delivery "${delivery}" is not "relay" (in-session, the default) or "queue" (store and retry deferred mail)`, usage);
          changes["deliveryMode"] = delivery;
        }
        if (Object.keys(changes).length === 0) throw usageError("nothing to set", usage);
        const zone = await service.zones.update(need(positionals, 1, "domain", usage), changes);
        const p = zone.policy;
        emit(output, values, zone, [
          `${zone.name}: sub-addressing ${onOff(zone.supportSubaddress)}, dot-insensitive ${onOff(zone.dotInsensitive)}`,
          `  DMARC p=reject enforced ${onOff(p.enforceDmarc)}, SPF-or-DKIM required ${onOff(p.requireAuth)}, p=quarantine ${p.rejectQuarantine ? "rejected" : "accepted and marked"}, spam threshold ${p.spamThreshold ?? "off"}, DKIM/ARC signing ${onOff(p.signOutbound)}`,
          `  delivery ${p.deliveryMode === "queue" ? "queue (deferred mail is stored and retried; the sender hears 250)" : "relay (in-session: the sender hears the destination's answer)"}`,
        ]);
        return;
      }
      default:
        throw usageError(`unknown subcommand "${verb}"`, usage);
    }
  });
}

// ── address ─────────────────────────────────────────────────────────────────
