/**
 * The DNS records to publish for the zone (…/email/routing/dns: MX, SPF, DKIM, DMARC,
 * MTA-STS, TLS-RPT), each value with a copy button; `mailroute doctor` checks them live.
 */
import { useState } from "react";
import type { DnsRecord } from "../api-types.ts";
import { Empty, Show } from "../states.tsx";
import { useResource } from "../use-resource.ts";
import type { ViewProps } from "./view-props.ts";

export function DnsView({ api, zone }: ViewProps) {
  const [records, reload] = useResource(() => api.get<DnsRecord[]>(`/zones/${zone.id}/email/routing/dns`), []);
  const [copied, setCopied] = useState<string | null>(null);
  async function copy(key: string, text: string) {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(key);
    } catch {
      setCopied(`failed:${key}`);
    }
  }
  return (
    <section className="card" aria-labelledby="dns-title">
      <h2 id="dns-title">Records to publish at your DNS provider</h2>
      <p className="muted">
        After publishing, run <code>mailroute doctor {zone.name}</code> to check them against live DNS.
      </p>
      <p className="visually-hidden" role="status" aria-live="polite">
        {copied === null ? "" : copied.startsWith("failed:") ? "Copy failed; select the value instead." : "Copied."}
      </p>
      <Show resource={records} what="DNS records" retry={reload}>
        {(list) =>
          list.length === 0 ? (
            <Empty title="No records to publish" />
          ) : (
            <ul className="records">
              {list.map((record, index) => {
                const key = `${index}`;
                return (
                  <li key={key} className="record">
                    <div className="row spread wrap">
                      <span>
                        <span className="badge">{record.type}</span> <code className="name">{record.name}</code>
                        {record.priority !== null && record.priority !== undefined && <span className="muted"> priority {record.priority}</span>}
                      </span>
                      <span className="muted small">{record.purpose}</span>
                    </div>
                    <div className="row value-row">
                      <code className="value">{record.content}</code>
                      <button type="button" className="secondary small" aria-label={`Copy the ${record.type} value for ${record.name}`} onClick={() => void copy(key, record.content)}>
                        {copied === key ? "Copied" : "Copy"}
                      </button>
                    </div>
                  </li>
                );
              })}
            </ul>
          )
        }
      </Show>
    </section>
  );
}
