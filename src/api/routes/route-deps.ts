/**
 * What the /client/v4 route files share: authorisation (Access), the MX host name, the DNS
 * records a zone should publish, and how the account name is read for zone shapes.
 */
import type { ExpectedRecord } from "../../core/zone-dns-records.ts";
import type { Access } from "../access.ts";

export interface ApiDeps {
  access: Access;
  hostname: string;
  /** The records a zone should publish (MX, SPF, DKIM, DMARC …), as `mailroute doctor` expects them. */
  dnsRecords(zone: string): Promise<ExpectedRecord[]>;
}
