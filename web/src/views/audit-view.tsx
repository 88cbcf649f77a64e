/**
 * The account's audit log (/accounts/{id}/logs/audit): who changed what, when, from where,
 * newest first, with cursor paging ("Load older").
 */
import { useState } from "react";
import type { Envelope } from "../api-client.ts";
import type { AuditEntry } from "../api-types.ts";
import { Empty, Failed, Loading } from "../states.tsx";
import { useResource } from "../use-resource.ts";
import type { ViewProps } from "./view-props.ts";

type AuditPage = Envelope<AuditEntry[]> & { result_info?: { cursor?: string | null } };

export function AuditView({ api, zone }: ViewProps) {
  const base = `/accounts/${zone.account.id}/logs/audit?limit=50`;
  const [first, reload] = useResource(() => api.call<AuditEntry[]>("GET", base) as Promise<AuditPage>, []);
  const [more, setMore] = useState<AuditEntry[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined);
  if (first.state === "loading") return <Loading what="audit log" />;
  if (first.state === "error") return <Failed error={first.error} retry={reload} />;
  const entries = [...first.value.result, ...more];
  const next = cursor === undefined ? first.value.result_info?.cursor : cursor;
  async function loadOlder() {
    const page = (await api.call<AuditEntry[]>("GET", `${base}&cursor=${encodeURIComponent(next ?? "")}`)) as AuditPage;
    setMore((current) => [...current, ...page.result]);
    setCursor(page.result_info?.cursor ?? null);
  }
  if (entries.length === 0) return <Empty title="Nothing changed yet">{<p>Every change made through the API, the CLI or this dashboard is recorded here.</p>}</Empty>;
  return (
    <section className="card" aria-labelledby="audit-title">
      <h2 id="audit-title">Changes in {zone.account.name}</h2>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Action</th>
              <th scope="col">Who</th>
              <th scope="col">Resource</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((entry) => (
              <tr key={entry.id}>
                <td>{new Date(entry.when).toLocaleString()}</td>
                <td>
                  <code>{entry.action.type}</code>
                  {entry.action.description && <div className="muted small">{entry.action.description}</div>}
                </td>
                <td>
                  {entry.actor.token_name ?? entry.actor.name ?? entry.actor.context}
                  {entry.actor.ip_address && <div className="muted small">{entry.actor.ip_address}</div>}
                </td>
                <td>
                  {entry.resource.type} <span className="muted small">{entry.resource.id}</span>
                </td>
                <td>
                  <span className={`badge ${entry.action.result === "success" ? "ok" : "warn"}`}>{entry.action.result}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {next !== null && next !== undefined && next !== "" && (
        <button type="button" className="secondary" onClick={() => void loadOlder()}>
          Load older
        </button>
      )}
    </section>
  );
}
