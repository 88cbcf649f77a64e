/**
 * Every certificate the service presents, in one place: the STARTTLS credentials (the
 * operator's files, ACME's, or the self-signed dev certificate), the ACME client that keeps
 * ACME's current, the optional HTTPS listener for the MTA-STS policy hosts, and the MTA-STS
 * mode those certificates allow (mta-sts-mode.ts).
 *
 * Promises:
 * - STARTTLS always starts with a usable pair: with ACME on and no certificate issued yet, a
 *   self-signed placeholder is put where ACME will write, and the TlsCredentials watcher swaps
 *   in the issued certificate without a restart (as it does for a certbot renewal);
 * - the first policy served already has the mode the certificates allow (checked before the
 *   HTTP service starts);
 * - HTTPS presents, per SNI name, the ACME certificate for that name, else the MX pair.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import type { RequestListener } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import type { Logger } from "../analytics/structured-log.ts";
import type { AcmeCertificates } from "../acme/acme-certificates.ts";
import { certificateFiles } from "../acme/certificate-files.ts";
import { HttpChallenges } from "../acme/http-challenges.ts";
import type { Settings } from "../config/settings.ts";
import type { MtaStsMode } from "../core/zone-dns-records.ts";
import { loadCaFile } from "../delivery/certificate-trust.ts";
import type { RoutingTable } from "../routing/routing-table.ts";
import { createDevCredentials, loadKeyPair, TlsCredentials, type TlsErrorListener } from "../smtp/tls-credentials.ts";
import { MtaStsModeTracker } from "./mta-sts-mode.ts";

export interface CertificateSetupOptions {
  logger: Logger;
  routing: () => RoutingTable;
  onTlsError: TlsErrorListener;
  /** ACME timing (tests shorten it). */
  acme?: { renewBeforeMs?: number; checkEveryMs?: number };
}

export interface CertificateSetup {
  readonly tls: TlsCredentials;
  readonly acmeChallenges: HttpChallenges | null;
  readonly acme: AcmeCertificates | null;
  readonly modes: MtaStsModeTracker;
  mtaStsMode(zone: string): MtaStsMode;
  /** After the HTTP service listens: start ACME and the HTTPS listener serving `handle` (http-front.ts): its address, or null when off. */
  start(handle: RequestListener): Promise<AddressInfo | null>;
  close(): Promise<void>;
}

/** Where the STARTTLS certificate comes from, for `mailroute doctor` to check the same files. */
export function mxCertificateFiles(settings: Readonly<Settings>): { certFile: string; keyFile: string; source: "files" | "acme" | "self-signed" } {
  if (settings.tlsCert !== null && settings.tlsKey !== null) return { certFile: settings.tlsCert, keyFile: settings.tlsKey, source: "files" };
  if (settings.acmeDirectory !== null) return { ...certificateFiles(join(settings.dataDir, "acme"), settings.hostname), source: "acme" };
  return { certFile: join(settings.dataDir, "tls", "dev-cert.pem"), keyFile: join(settings.dataDir, "tls", "dev-key.pem"), source: "self-signed" };
}

export async function setUpCertificates(settings: Readonly<Settings>, options: CertificateSetupOptions): Promise<CertificateSetup> {
  const { logger, onTlsError } = options;
  const extraCa = settings.caFile === null ? [] : loadCaFile(settings.caFile);
  const acmeDir = join(settings.dataDir, "acme");
  const tls = settings.tlsCert !== null && settings.tlsKey !== null
    ? TlsCredentials.watch({ certFile: settings.tlsCert, keyFile: settings.tlsKey, onError: onTlsError })
    : settings.acmeDirectory !== null
      ? await acmeStarttlsCredentials(settings, acmeDir, onTlsError)
      : await createDevCredentials(settings.hostname, settings.dataDir, { onError: onTlsError });

  const enabledZones = () => [...options.routing().zones.values()].filter((zone) => zone.enabled).map((zone) => zone.name);
  const challenges = settings.acmeDirectory === null ? null : new HttpChallenges();
  // acme-client (axios, node-forge) is loaded only when ACME is configured, still here at start:
  // a bad ACME setting fails the start as before, not the first renewal
  const acme = settings.acmeDirectory === null || challenges === null
    ? null
    : new (await import("../acme/acme-certificates.ts")).AcmeCertificates({
        directoryUrl: settings.acmeDirectory,
        email: settings.acmeEmail,
        dir: acmeDir,
        // policy-host certificates only when we serve HTTPS for them ourselves
        names: () => [settings.hostname, ...(settings.httpsPort === null ? [] : enabledZones().map((zone) => `mta-sts.${zone}`))],
        challenges,
        extraCa,
        logger,
        ...options.acme,
      });
  const modes = new MtaStsModeTracker({
    setting: settings.mtaStsMode,
    hostname: settings.hostname,
    mx: { current: () => tls.current(), onChange: (listener) => tls.onChange(() => listener()) },
    ...(acme !== null && settings.httpsPort !== null
      ? // what HTTPS presents for each policy host: its ACME certificate, or the MX pair until there is one
        { policyHosts: () => new Map(enabledZones().map((zone) => [zone, acme.pair(`mta-sts.${zone}`) ?? tls.current()] as const)) }
      : {}),
    extraCa,
    logger,
  });
  await modes.refresh();
  acme?.onIssued((name) => {
    // the watcher would notice within its poll interval; the MX pair is worth having now
    if (name === settings.hostname) tls.reload();
    void modes.refresh();
  });

  let https: HttpsServer | null = null;
  const contexts = new Map<string, SecureContext>();
  const contextFor = (pair: { cert: string; key: string }): SecureContext => {
    let context = contexts.get(pair.cert);
    if (context === undefined) {
      if (contexts.size > 256) contexts.clear();
      context = createSecureContext(pair);
      contexts.set(pair.cert, context);
    }
    return context;
  };

  return {
    tls,
    acmeChallenges: challenges,
    acme,
    modes,
    mtaStsMode: (zone) => modes.modeFor(zone),
    async start(handle) {
      acme?.start();
      if (settings.httpsPort === null) return null;
      const server = createHttpsServer(
        {
          ...tls.current(),
          SNICallback: (servername, callback) => {
            const name = servername.toLowerCase();
            callback(null, contextFor(acme?.pair(name) ?? tls.current()));
          },
        },
        handle,
      );
      https = server;
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(settings.httpsPort!, settings.httpHost, () => {
          server.off("error", reject);
          resolve();
        });
      });
      return server.address() as AddressInfo;
    },
    async close() {
      await acme?.close();
      modes.close();
      tls.close();
      if (https !== null) {
        const server = https;
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}

/** STARTTLS credentials watching ACME's files for our host name, seeded with the self-signed pair until ACME has issued one. */
async function acmeStarttlsCredentials(settings: Readonly<Settings>, acmeDir: string, onError: TlsErrorListener): Promise<TlsCredentials> {
  const files = certificateFiles(acmeDir, settings.hostname);
  let usable = true;
  try {
    loadKeyPair(files.certFile, files.keyFile);
  } catch {
    usable = false;
  }
  if (!usable) {
    const dev = await createDevCredentials(settings.hostname, settings.dataDir);
    dev.close();
    mkdirSync(join(acmeDir, "certs", settings.hostname), { recursive: true, mode: 0o700 });
    copyFileSync(dev.files.keyFile, files.keyFile);
    copyFileSync(dev.files.certFile, files.certFile);
  }
  return TlsCredentials.watch({ certFile: files.certFile, keyFile: files.keyFile, onError });
}
