/**
 * The MTA-STS policy mode we serve (RFC 8461 §5): `enforce` tells senders to refuse delivery
 * unless our MX presents a certificate that validates; `testing` only asks for reports. With
 * the default self-signed certificate an enforce policy would make every MTA-STS sender refuse
 * our mail, so `auto` (the default) serves testing until the certificates validate.
 *
 * Promises:
 * - `auto` is enforce only when the MX certificate validates for our host name and every
 *   policy-host certificate we serve ourselves (ACME) validates for its mta-sts.<zone> name; a
 *   policy host behind someone else's TLS cannot be seen from here, and cannot hurt either: a
 *   sender that cannot fetch a policy over valid HTTPS applies none (RFC 8461 §3.3);
 * - the verdict is re-evaluated when the certificate changes (reload, ACME renewal) and every
 *   hour (expiry), and logged when the mode changes;
 * - `modeFor()` is synchronous and cheap: the policy route calls it per request.
 */
import type { Logger } from "../analytics/structured-log.ts";
import type { MtaStsModeSetting } from "../config/settings.ts";
import type { MtaStsMode } from "../core/zone-dns-records.ts";
import { checkCertificate, type CertificateVerdict } from "./certificate-check.ts";

export interface KeyPairSource {
  current(): { cert: string; key: string };
  onChange(listener: () => void): () => void;
}

export interface MtaStsModeOptions {
  setting: MtaStsModeSetting;
  hostname: string;
  /** The MX's STARTTLS credentials. */
  mx: KeyPairSource;
  /** Certificates we serve for policy hosts, by zone (ACME); absent: TLS is terminated elsewhere. */
  policyHosts?: () => ReadonlyMap<string, { cert: string; key: string }>;
  extraCa?: readonly string[];
  logger: Logger;
  recheckMs?: number;
}

/** The mode `auto` resolves to, given the verdicts: pure, shared with `mailroute doctor`. */
export function resolveMtaStsMode(setting: MtaStsModeSetting, mx: Pick<CertificateVerdict, "ok">, policyHost?: Pick<CertificateVerdict, "ok"> | null): MtaStsMode {
  if (setting !== "auto") return setting;
  return mx.ok && (policyHost === undefined || policyHost === null || policyHost.ok) ? "enforce" : "testing";
}

export class MtaStsModeTracker {
  readonly #options: MtaStsModeOptions;
  #mx: CertificateVerdict | null = null;
  #policyHosts = new Map<string, CertificateVerdict>();
  #lastModes = new Map<string, MtaStsMode>();
  readonly #timer: NodeJS.Timeout;
  readonly #unsubscribe: () => void;
  #running: Promise<void> | null = null;

  constructor(options: MtaStsModeOptions) {
    this.#options = options;
    this.#unsubscribe = options.mx.onChange(() => void this.refresh());
    this.#timer = setInterval(() => void this.refresh(), options.recheckMs ?? 3_600_000);
    this.#timer.unref();
  }

  /** Checks the certificates now (a check already running is awaited, not repeated). */
  refresh(): Promise<void> {
    if (this.#options.setting !== "auto") return Promise.resolve();
    this.#running ??= this.#evaluate().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  get mxVerdict(): CertificateVerdict | null {
    return this.#mx;
  }

  modeFor(zone: string): MtaStsMode {
    if (this.#options.setting !== "auto") return this.#options.setting;
    if (this.#mx === null) return "testing";
    return resolveMtaStsMode("auto", this.#mx, this.#policyHosts.get(zone) ?? null);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#unsubscribe();
  }

  async #evaluate(): Promise<void> {
    const { hostname, extraCa, logger } = this.#options;
    this.#mx = await checkCertificate(this.#options.mx.current(), hostname, { extraCa });
    const hosts = new Map<string, CertificateVerdict>();
    for (const [zone, pair] of this.#options.policyHosts?.() ?? []) hosts.set(zone, await checkCertificate(pair, `mta-sts.${zone}`, { extraCa }));
    this.#policyHosts = hosts;
    const mode = this.modeFor("");
    if (this.#lastModes.get("") !== mode) {
      this.#lastModes.set("", mode);
      logger.log(mode === "enforce" ? "info" : "warn", "mta_sts_mode", {
        mode,
        setting: "auto",
        mx_certificate: this.#mx.ok ? "valid" : this.#mx.problem,
        ...(mode === "testing" ? { hint: "serving mode: testing until the MX certificate validates (--tls-cert or --acme-directory)" } : {}),
      });
    }
  }
}
