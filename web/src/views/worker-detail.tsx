/**
 * One Email Worker in the dashboard: its deployed version and time, its bindings, its recent
 * console lines (what `mailroute worker tail` shows), and a browser of the KV namespaces it is
 * bound to. Read-only: deploys go through wrangler or the CLI. Every read is the public REST API
 * (Cloudflare's paths; the log lines are a mailroute extension), so a script can do the same.
 */
import { useState } from "react";
import type { ApiClient } from "../api-client.ts";
import { Empty, Show } from "../states.tsx";
import { useResource } from "../use-resource.ts";

export interface WorkerBinding {
  name: string;
  type: string;
  namespace_id?: string;
  [field: string]: unknown;
}

export interface WorkerScript {
  id: string;
  version?: string;
  modified_on?: string;
  created_on?: string;
  compatibility_date?: string;
  bundle_size?: number;
  bindings?: WorkerBinding[];
}

interface LogLine {
  id: number;
  at: string;
  level: string;
  message: string;
}

interface KvKey {
  name: string;
  expiration?: number;
}

const BINDING_LABELS: Record<string, string> = {
  plain_text: "variable",
  secret_text: "secret (value never shown)",
  kv_namespace: "KV namespace",
  send_email: "send_email",
  d1: "D1 database",
  r2_bucket: "R2 bucket",
  queue: "queue producer",
  analytics_engine: "Analytics Engine dataset",
  ai: "Workers AI",
};

function describe(binding: WorkerBinding): string {
  const target = binding.namespace_id ?? binding["database_name"] ?? binding["bucket_name"] ?? binding["queue_name"] ?? binding["dataset"];
  return `${BINDING_LABELS[binding.type] ?? binding.type}${typeof target === "string" ? ` → ${target}` : ""}`;
}

export function WorkerDetail({ api, account, script }: { api: ApiClient; account: string; script: WorkerScript }) {
  const base = `/accounts/${account}/workers/scripts/${encodeURIComponent(script.id)}`;
  const [logs, reloadLogs] = useResource(() => api.get<LogLine[]>(`${base}/logs?limit=50`), [base]);
  const namespaces = (script.bindings ?? []).filter((binding) => binding.type === "kv_namespace" && typeof binding.namespace_id === "string");
  return (
    <section className="worker-detail" data-testid="worker-detail" aria-label={`Email Worker ${script.id}`}>
      <h3>{script.id}</h3>
      <p className="muted">
        version <code>{(script.version ?? "").slice(0, 12) || "–"}</code>, deployed {script.modified_on === undefined ? "–" : new Date(script.modified_on).toLocaleString()}
        {script.compatibility_date === undefined ? "" : `, compatibility date ${script.compatibility_date}`}
      </p>
      <h4>Bindings</h4>
      {(script.bindings ?? []).length === 0 ? (
        <p className="muted">No bindings.</p>
      ) : (
        <table className="bindings" data-testid="worker-bindings">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
            </tr>
          </thead>
          <tbody>
            {(script.bindings ?? []).map((binding) => (
              <tr key={`${binding.type}:${binding.name}`}>
                <td>
                  <code>{binding.name}</code>
                </td>
                <td>{describe(binding)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h4>
        Recent console output{" "}
        <button type="button" onClick={reloadLogs}>
          Refresh
        </button>
      </h4>
      <Show resource={logs} what="console output" retry={reloadLogs}>
        {(lines) =>
          lines.length === 0 ? (
            <Empty title="No console output yet">
              <p>Lines the worker logs (console.log, errors, incidents) appear here after it runs.</p>
            </Empty>
          ) : (
            <pre className="console" data-testid="worker-console">
              {lines.map((line) => `${line.at}  ${line.level.padEnd(5)}  ${line.message}`).join("\n")}
            </pre>
          )
        }
      </Show>
      {namespaces.map((binding) => (
        <KvBrowser key={binding.name} api={api} account={account} binding={binding.name} namespace={binding.namespace_id!} />
      ))}
    </section>
  );
}

function KvBrowser({ api, account, binding, namespace }: { api: ApiClient; account: string; binding: string; namespace: string }) {
  const base = `/accounts/${account}/storage/kv/namespaces/${encodeURIComponent(namespace)}`;
  const [prefix, setPrefix] = useState("");
  const [keys, reload] = useResource(() => api.get<KvKey[]>(`${base}/keys?limit=100${prefix === "" ? "" : `&prefix=${encodeURIComponent(prefix)}`}`), [base, prefix]);
  const [open, setOpen] = useState<{ key: string; value: string | null; error?: string } | null>(null);
  const show = (key: string) => {
    setOpen({ key, value: null });
    api.text(`${base}/values/${encodeURIComponent(key)}`).then(
      (value) => setOpen({ key, value }),
      (error: unknown) => setOpen({ key, value: null, error: error instanceof Error ? error.message : String(error) }),
    );
  };
  return (
    <div className="kv-browser" data-testid="kv-browser">
      <h4>
        KV <code>{binding}</code> → {namespace}
      </h4>
      <label>
        Keys starting with <input value={prefix} onChange={(event) => setPrefix(event.target.value)} aria-label={`prefix for ${namespace}`} />
      </label>
      <Show resource={keys} what="keys" retry={reload}>
        {(list) =>
          list.length === 0 ? (
            <Empty title="No keys" />
          ) : (
            <ul className="records">
              {list.map((entry) => (
                <li key={entry.name} className="record">
                  <button type="button" onClick={() => show(entry.name)} aria-label={`show value of ${entry.name}`}>
                    {entry.name}
                  </button>
                  {entry.expiration === undefined ? null : <span className="muted"> expires {new Date(entry.expiration * 1000).toLocaleString()}</span>}
                </li>
              ))}
            </ul>
          )
        }
      </Show>
      {open === null ? null : (
        <div className="kv-value" data-testid="kv-value" role="region" aria-label={`value of ${open.key}`}>
          <strong>{open.key}</strong>
          {open.error !== undefined ? <p className="error">{open.error}</p> : open.value === null ? <p className="muted">Loading…</p> : <pre>{open.value}</pre>}
        </div>
      )}
    </div>
  );
}
