/**
 * `mailroute doctor <domain>`: checks the DNS records a zone needs (MX, SPF, DKIM, DMARC,
 * MTA-STS, TLS-RPT) against live DNS through --dns-servers, prints per record ok / missing /
 * wrong / unknown with the exact zone-file line to publish, and records the zone's status
 * (ready / misconfigured).
 *
 * Promises:
 * - the DKIM record is printed before any mail was forwarded: the key is read from, or
 *   generated into, `<dataDir>/dkim/` exactly as the signer will (same selector settings);
 * - exit code 0 only when every record is ok; 1 when any needs action or could not be checked;
 *   2 for a usage mistake;
 * - a record that could not be checked (DNS temporary failure) never turns a ready zone
 *   misconfigured: with nothing missing or wrong, the zone keeps the status it had;
 * - every DNS query is bounded (c-ares timeout × tries), so doctor ends within seconds even
 *   when the resolver does not answer;
 * - --hostname, --dns-servers, --dkim-selector, --dkim-ed25519, the certificate settings
 *   (--tls-cert, --tls-key, --ca-file, --acme-directory, --https-port) and --mta-sts-mode (and
 *   their MAILROUTE_ twins) mean what they mean for `mailroute start`, defaults included;
 * - never proposes records for a --hostname that is not a fully qualified domain name;
 * - checks the certificates senders will see (chain, name, expiry) before the MTA-STS record:
 *   while they do not validate, `_mta-sts` is "held" (not to be published), and a published
 *   one that makes senders enforce an invalid certificate is "wrong" (remove it) — doctor never
 *   tells an operator to publish something that would make senders refuse their mail.
 */
import { Resolver } from "node:dns/promises";
import { join } from "node:path";
import { envName, loadSettings, SETTING_SPECS, SettingsError, type Settings } from "../config/settings.ts";
import { checkRecords, type DnsRecordLookup, type RecordCheck } from "../core/dns-doctor.ts";
import { CLI_OPERATOR } from "../core/service-context.ts";
import { createServices, type AccountServices } from "../core/services.ts";
import { zoneName } from "../core/zones/zone-service.ts";
import { ValidationError } from "../core/validation-error.ts";
import { expectedZoneRecords, zoneFileLine } from "../core/zone-dns-records.ts";
import { DkimKeyStore, type DkimPublicRecord } from "../delivery/dkim-keys.ts";
import { openStore, StoreMissingError, type Store } from "../store/open-store.ts";
import { dkimSecretsFor } from "./node-secrets.ts";
import { hostnameProblem } from "../config/host-name-check.ts";
import { checkServedCertificates, type ServedCertificate, type ServedCertificates } from "../tls/served-certificates.ts";
import { CliError, usageError } from "./cli-error.ts";
import { byFlagName, parseCommand, settingFlags, type LeafSpec } from "./command-spec.ts";
import { missingStore } from "./open-configuration.ts";
import { type Output } from "./command-output.ts";

// the settings doctor shares with `mailroute start`, each with its MAILROUTE_ twin
const SETTING_FLAGS = ["data-dir", "database", "cluster-key-file", "hostname", "dns-servers", "dkim-selector", "dkim-ed25519", "tls-cert", "tls-key", "ca-file", "acme-directory", "https-port", "mta-sts-mode"] as const;

export const DOCTOR_SPEC: LeafSpec = {
  name: "doctor",
  args: "<domain>",
  summary: "check the domain's DNS records and print exactly what to publish",
  options: [["--json", "print the result as JSON"], ...settingFlags(SETTING_FLAGS.map((flag) => Object.values(SETTING_SPECS).find((spec) => spec.flag === flag)!))],
  example: "mailroute doctor example.com --hostname mx.example.com",
};

// c-ares bounds each query: 2 s, then 4 s on the retry. Lookups run in parallel, so a resolver
// that never answers costs about one query's worst case (~7 s measured), not the sum.
const DNS_TIMEOUT_MS = 2_000;
const DNS_TRIES = 2;
const DNS_MAX_TIMEOUT_MS = 4_000;

export async function doctorCommand(argv: string[], output: Output): Promise<void> {
  const { values, operands: positionals, usage } = parseCommand<{ json?: boolean } & Record<string, unknown>>(DOCTOR_SPEC, argv);
  if (positionals.length === 0) throw usageError("missing domain", usage);
  if (positionals.length > 1) throw usageError(`one domain at a time (got ${positionals.join(", ")})`, usage);
  let domain: string;
  try {
    domain = zoneName(positionals[0]!, "domain");
  } catch (error) {
    throw usageError((error as Error).message, usage);
  }
  const settings = settingsFrom(values);
  const hostProblem = hostnameProblem(settings.hostname);
  if (hostProblem !== null) {
    throw new CliError(`--hostname: ${hostProblem}: an MX record must name a host that public DNS resolves, so doctor proposes no records for it`, {
      exitCode: 2,
      hint: `pass --hostname mx.${domain} (or MAILROUTE_HOSTNAME): the name of this server in DNS, the same one "mailroute start" runs with`,
    });
  }
  const dns = createDoctorDns(settings.dnsServers);

  const report = await withStore(settings, domain, async (service, store) => {
    const zone = await service.zones.get(domain).catch((error: unknown) => {
      if (error instanceof ValidationError && error.code === "not_found") {
        throw new CliError(`${domain} is not a domain routed here`, { hint: `add it first: mailroute domain add ${domain}   (mailroute domain list shows the domains)` });
      }
      throw error;
    });
    const dkim = await dkimRecords(settings, store, zone.name);
    const served = await servedCertificates(settings, zone.name);
    const checks = holdMtaSts(
      await checkRecords(expectedZoneRecords({ zone: zone.name, hostname: settings.hostname, dkim, mtaStsMode: served.mode }), dns, { hostname: settings.hostname }),
      served,
    );
    const certificates = served.certificates;
    const needsAction = checks.filter((check) => check.status === "missing" || check.status === "wrong").length + certificates.filter((certificate) => !certificate.ok).length;
    const unknown = checks.filter((check) => check.status === "unknown").length;
    // unknown alone proves nothing either way: keep what the last conclusive run found
    const status = needsAction > 0 ? "misconfigured" : unknown > 0 ? zone.status : "ready";
    if (status !== zone.status) await service.zones.setStatus(zone.name, needsAction > 0 ? "misconfigured" : "ready");
    return { zone: zone.name, status, checks, certificates, needsAction, unknown };
  });

  if (values.json) output.out(JSON.stringify([...report.certificates.map(jsonCertificate), ...report.checks.map(jsonRecord)], null, 2));
  else for (const line of humanReport(report, settings)) output.out(line);

  if (report.needsAction > 0) {
    const badCertificates = report.certificates.filter((certificate) => !certificate.ok).length;
    const badRecords = report.needsAction - badCertificates;
    const parts = [
      ...(badCertificates > 0 ? [`${badCertificates} of ${report.certificates.length} certificates`] : []),
      ...(badRecords > 0 ? [`${badRecords} of ${report.checks.length} DNS records`] : []),
    ];
    throw new CliError(`${parts.join(" and ")} for ${report.zone} need action`, {
      hint: badRecords > 0
        ? `publish the records shown, then run "mailroute doctor ${report.zone}" again (resolvers may keep old answers for up to their TTL)`
        : `fix the certificate as shown, then run "mailroute doctor ${report.zone}" again`,
    });
  }
  if (report.unknown > 0) {
    throw new CliError(`${report.unknown} of ${report.checks.length} DNS records for ${report.zone} could not be checked (DNS lookup failed)`, {
      hint: "check --dns-servers (or MAILROUTE_DNS_SERVERS), then run doctor again",
    });
  }
}

function settingsFrom(values: Record<string, unknown>): Readonly<Settings> {
  try {
    return loadSettings(byFlagName(values, SETTING_FLAGS));
  } catch (error) {
    if (error instanceof SettingsError) throw new CliError(error.message, { exitCode: 2, hint: `or set ${envName(error.setting)}` });
    throw error;
  }
}

async function withStore<T>(settings: Readonly<Settings>, domain: string, work: (service: AccountServices, store: Store) => Promise<T>): Promise<T> {
  let store: Store;
  try {
    store = await openStore({ dataDir: settings.dataDir, databaseUrl: settings.database ?? undefined, create: false });
  } catch (error) {
    if (error instanceof StoreMissingError) throw missingStore(error, settings.dataDir);
    throw new CliError(`cannot open the mailroute store: ${(error as Error).message}`, { hint: "check --data-dir (or MAILROUTE_DATA_DIR) points at the server's data directory" });
  }
  try {
    // The operator's doctor checks a domain whichever account routes it.
    const services = createServices(store);
    const account = (await services.accountOfZone(domain)) ?? "default";
    return await work(services.forAccount({ account, actor: CLI_OPERATOR }), store);
  } finally {
    await store.close();
  }
}

/**
 * The zone's DKIM key records, generated now if no mail was signed yet, from the same place and
 * selectors as the signer's: the data directory, or in cluster mode the database every node shares.
 */
async function dkimRecords(settings: Readonly<Settings>, store: Store, zone: string): Promise<DkimPublicRecord[]> {
  try {
    const keys = new DkimKeyStore({ secrets: await dkimSecretsFor(settings, store), selector: settings.dkimSelector, ed25519: settings.dkimEd25519 });
    return await keys.publicRecords(zone);
  } catch (error) {
    throw new CliError(`cannot read or create the DKIM key for ${zone}: ${(error as Error).message}`, {
      hint: settings.database === null
        ? "run doctor as the user the server runs as, with the same --data-dir (the server signs with the key kept there)"
        : "give doctor the same --database and cluster key (--cluster-key-file or MAILROUTE_CLUSTER_KEY) as the nodes",
    });
  }
}

/** `node:dns/promises` through --dns-servers ("host:port", IPv6 as "[::1]:53"), or the system's resolvers. */
export function createDoctorDns(servers: readonly string[]): DnsRecordLookup {
  const resolver = new Resolver({ timeout: DNS_TIMEOUT_MS, tries: DNS_TRIES, maxTimeout: DNS_MAX_TIMEOUT_MS });
  if (servers.length > 0) {
    try {
      resolver.setServers([...servers]);
    } catch {
      throw new CliError(`--dns-servers "${servers.join(",")}": expected IP addresses with optional :port ([::1]:53 for IPv6)`, { exitCode: 2, hint: `or set ${envName("dns-servers")}` });
    }
  }
  return {
    resolveMx: (name) => resolver.resolveMx(name),
    resolveTxt: (name) => resolver.resolveTxt(name),
    resolveCname: (name) => resolver.resolveCname(name),
    resolve4: (name) => resolver.resolve4(name),
    resolve6: (name) => resolver.resolve6(name),
  };
}

/** The issue's shape, `{type, name, value, priority?, status}`, then the rest for scripts that want it. */
function jsonRecord(check: RecordCheck) {
  return {
    type: check.type,
    name: check.name,
    value: check.value,
    ...(check.priority === undefined ? {} : { priority: check.priority }),
    status: check.status,
    purpose: check.purpose,
    published: check.published,
    record: check.value === "" ? null : zoneFileLine(check),
    ...(check.note === undefined ? {} : { note: check.note }),
  };
}

interface Report {
  zone: string;
  status: string;
  checks: RecordCheck[];
  certificates: ServedCertificate[];
  needsAction: number;
  unknown: number;
}

function humanReport(report: Report, settings: Readonly<Settings>): string[] {
  const resolver = settings.dnsServers.length > 0 ? settings.dnsServers.join(", ") : "the system resolver";
  const nameWidth = Math.max(...report.checks.map((check) => check.name.length), ...report.certificates.map((certificate) => certificate.name.length));
  const row = (check: RecordCheck) => `  ${check.status.toUpperCase().padEnd(8)} ${check.type.padEnd(6)} ${check.name.padEnd(nameWidth)}  ${check.purpose}`;
  const detail = (label: string, text: string) => `  ${" ".repeat(16)}${`${label}:`.padEnd(9)}${text}`;
  const lines = [`Certificates for ${report.zone} (checked as senders check them: chain, name, expiry)`];
  for (const certificate of report.certificates) {
    lines.push(`  ${(certificate.ok ? "OK" : "WRONG").padEnd(8)} ${"TLS".padEnd(6)} ${certificate.name.padEnd(nameWidth)}  ${certificate.purpose}`);
    if (certificate.note !== null) lines.push(detail(certificate.ok ? "note" : "why", certificate.note));
  }
  lines.push("", `DNS records for ${report.zone} (mail host ${settings.hostname}, checked through ${resolver})`, "");
  const groups = [
    { title: "NEEDS ACTION", statuses: ["missing", "wrong"], publish: "publish" },
    { title: "NOT CHECKED", statuses: ["unknown"], publish: "expected" },
    { title: "WAITING FOR VALID CERTIFICATES", statuses: ["held"], publish: null },
    { title: "OK", statuses: ["ok"], publish: null },
  ];
  for (const group of groups) {
    const checks = report.checks.filter((check) => group.statuses.includes(check.status));
    if (checks.length === 0) continue;
    lines.push(`${group.title} (${checks.length} of ${report.checks.length})`);
    for (const check of checks) {
      lines.push(row(check));
      if (group.publish !== null && check.published.length > 0) lines.push(detail("now", check.published.join(" | ")));
      if (check.note !== undefined) lines.push(detail(group.publish !== null ? "why" : "note", check.note));
      if (group.publish !== null && check.value !== "") lines.push(detail(group.publish, zoneFileLine(check)));
    }
    lines.push("");
  }
  lines.push(
    report.needsAction > 0
      ? `${report.zone} is misconfigured: publish the records under NEEDS ACTION, then run doctor again`
      : report.unknown > 0
        ? `${report.zone}: ${report.unknown} record${report.unknown === 1 ? "" : "s"} could not be checked; status left as ${report.status}`
        : `${report.zone} is ready: every record is published`,
  );
  return lines;
}

async function servedCertificates(settings: Readonly<Settings>, zone: string): Promise<ServedCertificates> {
  try {
    return await checkServedCertificates(settings, zone);
  } catch (error) {
    throw new CliError(`cannot check the certificates: ${(error as Error).message}`, { hint: "check --ca-file, --tls-cert and --tls-key (the same values mailroute start runs with)" });
  }
}

/**
 * RFC 8461 §5: a sender that fetched an enforce policy refuses to deliver to an MX whose
 * certificate does not validate. So while ours do not, the `_mta-sts` record is not to be
 * published ("held"), and an enforce policy already published must go.
 */
function holdMtaSts(checks: RecordCheck[], served: ServedCertificates): RecordCheck[] {
  if (served.allValid) return checks;
  const problem = served.certificates.filter((certificate) => !certificate.ok).map((certificate) => certificate.name).join(" and ");
  return checks.map((check) => {
    if (check.type !== "TXT" || !check.name.startsWith("_mta-sts.")) return check;
    if (served.mode === "enforce") {
      return {
        ...check,
        status: check.published.length > 0 ? "wrong" : "held",
        value: "",
        note: check.published.length > 0
          ? `the policy says enforce while the certificate of ${problem} does not validate: senders that apply it refuse your mail. Remove this record now (or start with --mta-sts-mode testing) until the certificate is fixed`
          : `do not publish: the policy says enforce and the certificate of ${problem} does not validate (start with --mta-sts-mode testing, or fix the certificate first)`,
      };
    }
    if (check.status === "missing") {
      return { ...check, status: "held", note: `publish once the certificate of ${problem} validates (mailroute serves mode: testing until then, and the record's id changes when it switches to enforce)` };
    }
    return check;
  });
}

/** A certificate in --json: type TLS, the name it must be valid for, its status and why. */
function jsonCertificate(certificate: ServedCertificate) {
  return {
    type: "TLS",
    name: certificate.name,
    status: certificate.ok ? "ok" : "wrong",
    purpose: certificate.purpose,
    ...(certificate.verdict === null ? {} : { issuer: certificate.verdict.issuer, valid_to: certificate.verdict.validTo.toISOString() }),
    ...(certificate.note === null ? {} : { note: certificate.note }),
  };
}
