/**
 * `mailroute address add|list|verify|resend|remove`: destination addresses and their
 * verification, through core/addresses; removing one used by rules asks first and names them.
 */
import { usageError } from "./cli-error.ts";
import { parseCommand, type FamilySpec, type StoreFlags } from "./command-spec.ts";
import { confirmRemoval } from "./confirm-removal.ts";
import { withService } from "./open-configuration.ts";
import { type Output, emit, table, need } from "./command-output.ts";
import { YES, yes } from "./command-output.ts";

export const ADDRESS_SPEC: FamilySpec = {
  name: "address",
  summary: "destination addresses (must be verified)",
  subcommands: [
    { name: "add", args: "<email>", summary: "add a destination (the server mails it a verification link)", options: [["--verified", "vouch for it yourself"]], example: "mailroute address add you@example.net --verified", store: true },
    { name: "list", summary: "list destinations", example: "mailroute address list", store: true },
    { name: "verify", args: "<email>", summary: "mark a destination verified", example: "mailroute address verify you@example.net", store: true },
    { name: "resend", args: "<email>", summary: "send a new verification link", example: "mailroute address resend you@example.net", store: true },
    { name: "remove", args: "<email>", summary: "remove a destination (asks first when rules use it)", options: [YES], example: "mailroute address remove you@example.net --yes", store: true },
  ],
};

export async function addressCommand(argv: string[], output: Output): Promise<void> {
  const { verb, operands, values, usage } = parseCommand<StoreFlags & { verified?: boolean; yes?: boolean }>(ADDRESS_SPEC, argv);
  const positionals = [verb, ...operands];
  await withService(values, async (service) => {
    switch (verb) {
      case "add": {
        const address = await service.addresses.create(need(positionals, 1, "email address", usage), { verified: values.verified === true });
        emit(output, values, address, [
          `added destination ${address.email} (${address.verified ? "verified" : "not verified"})`,
          ...(address.verified
            ? []
            : [
                `the running server sends ${address.email} a verification link (valid 24 h); rules using it stay inactive until it is confirmed`,
                `(or vouch for it yourself: mailroute address verify ${address.email})`,
              ]),
        ]);
        return;
      }
      case "list": {
        const addresses = await service.addresses.all();
        emit(output, values, addresses, addresses.length === 0 ? ["no destination addresses yet: mailroute address add you@example.net --verified"] : table([["EMAIL", "VERIFIED"], ...addresses.map((a) => [a.email, a.verified ?? "no"])]));
        return;
      }
      case "verify": {
        const address = await service.addresses.markVerified(need(positionals, 1, "email address", usage));
        emit(output, values, address, [`${address.email} is verified; rules using it are now active`]);
        return;
      }
      case "resend": {
        const address = await service.addresses.resendVerification(need(positionals, 1, "email address", usage));
        emit(output, values, address, [`the running server sends ${address.email} a new verification link`]);
        return;
      }
      case "remove": {
        const email = need(positionals, 1, "email address", usage);
        const using = await service.rules.usingDestination(email);
        if (using.length > 0) {
          const affected = using.map((r) => `rule "${r.name}" forwards to ${email}: it becomes inactive and its mail is refused`);
          await confirmRemoval({ action: `remove destination ${email}`, affected, yes: values.yes === true, command: `mailroute address remove ${email}` }, output);
        }
        const removal = await service.addresses.remove(email);
        emit(output, values, removal, [
          `removed destination ${removal.address.email}`,
          ...(removal.inactiveRules.length === 0 ? [] : [`these rules are now inactive (mail for them is refused): ${removal.inactiveRules.map((r) => r.name).join(", ")}`]),
        ]);
        return;
      }
      default:
        throw usageError(`unknown subcommand "${verb}"`, usage);
    }
  });
}

// ── rule and catch-all ──────────────────────────────────────────────────────
