/**
 * Activity log: one row per message and recipient with its fate and why (outcome, upstream
 * reply, SPF/DKIM/DMARC/ARC), filters and search, and a detail view per message. Reads
 * …/email/routing/activity; a server without that route gets the designed placeholder.
 */
import { useState, type FormEvent } from "react";
import type { Envelope } from "../api-client.ts";
import type { ActivityItem } from "../api-types.ts";
import { NO_FILTERS, activityQuery, verdictClass, type ActivityFilters } from "../activity-query.ts";
import { Empty, Show } from "../states.tsx";
import { useResource } from "../use-resource.ts";
import type { ViewProps } from "./view-props.ts";

const OUTCOMES = ["forwarded", "dropped", "rejected", "delivery_failed", "deferred", "worker", "queued"];

export function ActivityView({ api, zone }: ViewProps) {
  const [filters, setFilters] = useState<ActivityFilters>(NO_FILTERS);
  const [form, setForm] = useState<ActivityFilters>(NO_FILTERS);
  const [selected, setSelected] = useState<string | null>(null);
  const base = `/zones/${zone.id}/email/routing/activity`;
  const [page, reload] = useResource<Envelope<ActivityItem[]>>(() => api.call<ActivityItem[]>("GET", `${base}?${activityQuery(filters, new Date())}`), [filters]);
  const update = (patch: Partial<ActivityFilters>) => setForm((current) => ({ ...current, ...patch }));
  function submit(event: FormEvent) {
    event.preventDefault();
    setFilters({ ...form, page: 1 });
  }
  return (
    <div className="stack">
      <form className="card filters" onSubmit={submit} aria-label="Filter activity">
        <div className="field">
          <label htmlFor="f-since">Time range</label>
          <select id="f-since" value={form.since} onChange={(event) => update({ since: event.target.value })}>
            <option value="1h">Last hour</option>
            <option value="24h">Last 24 hours</option>
            <option value="7d">Last 7 days</option>
            <option value="30d">Last 30 days</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-outcome">Outcome</label>
          <select id="f-outcome" value={form.outcome} onChange={(event) => update({ outcome: event.target.value })}>
            <option value="">Any</option>
            {OUTCOMES.map((outcome) => (
              <option key={outcome} value={outcome}>
                {outcome.replace("_", " ")}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-to">To</label>
          <input id="f-to" value={form.to} onChange={(event) => update({ to: event.target.value })} />
        </div>
        <div className="field">
          <label htmlFor="f-from">From</label>
          <input id="f-from" value={form.from} onChange={(event) => update({ from: event.target.value })} />
        </div>
        <div className="field grow">
          <label htmlFor="f-q">Search</label>
          <input id="f-q" type="search" value={form.q} onChange={(event) => update({ q: event.target.value })} />
        </div>
        <button type="submit" className="primary">
          Apply
        </button>
      </form>
      <section className="card" aria-labelledby="activity-title">
        <div className="row spread">
          <h2 id="activity-title">Messages</h2>
          <button type="button" className="secondary small" onClick={reload}>
            Refresh
          </button>
        </div>
        <Show resource={page} what="activity" retry={reload}>
          {(envelope) => {
            const items = envelope.result;
            if (items.length === 0) return <Empty title="No messages match">{<p>Mail that reaches {zone.name} shows up here within seconds.</p>}</Empty>;
            const info = envelope.result_info;
            const pages = info === undefined ? 1 : Math.max(1, Math.ceil(info.total_count / info.per_page));
            return (
              <>
                <div className="table-wrap">
                  <table className="activity">
                    <thead>
                      <tr>
                        <th scope="col">Time</th>
                        <th scope="col">From</th>
                        <th scope="col">To</th>
                        <th scope="col">Subject</th>
                        <th scope="col">Outcome</th>
                        <th scope="col">Authentication</th>
                      </tr>
                    </thead>
                    <tbody>
                      {items.map((item) => (
                        <tr key={item.id} className={selected === item.id ? "selected" : undefined}>
                          <td>
                            <button type="button" className="link" onClick={() => setSelected(item.id)} aria-label={`Details of the message to ${item.to} at ${item.received_at}`}>
                              {new Date(item.received_at).toLocaleString()}
                            </button>
                          </td>
                          <td>{item.from || "<>"}</td>
                          <td>{item.to}</td>
                          <td>{item.subject ?? <span className="muted">(none)</span>}</td>
                          <td>
                            <span className={`badge outcome-${item.outcome}`}>{item.outcome.replace("_", " ")}</span>
                            {item.reply_code !== null && <div className="muted small">{item.reply_code}</div>}
                          </td>
                          <td>
                            <AuthBadges item={item} />
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
                <nav className="row spread" aria-label="Pages">
                  <button type="button" className="secondary small" disabled={filters.page <= 1} onClick={() => setFilters({ ...filters, page: filters.page - 1 })}>
                    Newer
                  </button>
                  <span className="muted">
                    Page {filters.page} of {pages}
                  </span>
                  <button type="button" className="secondary small" disabled={filters.page >= pages} onClick={() => setFilters({ ...filters, page: filters.page + 1 })}>
                    Older
                  </button>
                </nav>
              </>
            );
          }}
        </Show>
      </section>
      {selected !== null && <Detail api={api} path={`${base}/${encodeURIComponent(selected)}`} onClose={() => setSelected(null)} />}
    </div>
  );
}

function AuthBadges({ item }: { item: ActivityItem }) {
  return (
    <span className="auth">
      {(["spf", "dkim", "dmarc", "arc"] as const).map((name) => (
        <span key={name} className={`verdict ${verdictClass(item[name])}`} title={`${name.toUpperCase()}: ${item[name] ?? "none"}`}>
          {name.toUpperCase()} {item[name] ?? "–"}
        </span>
      ))}
    </span>
  );
}

function Detail({ api, path, onClose }: { api: ViewProps["api"]; path: string; onClose: () => void }) {
  const [item, reload] = useResource(() => api.get<ActivityItem>(path), [path]);
  return (
    <section className="card detail" aria-labelledby="detail-title">
      <div className="row spread">
        <h2 id="detail-title">Message detail</h2>
        <button type="button" className="secondary small" onClick={onClose} autoFocus>
          Close
        </button>
      </div>
      <Show resource={item} what="message" retry={reload}>
        {(value) => (
          <dl className="facts" data-testid="activity-detail">
            <dt>Received</dt>
            <dd>{new Date(value.received_at).toLocaleString()}</dd>
            <dt>From</dt>
            <dd>{value.from || "<>"}</dd>
            <dt>To</dt>
            <dd>{value.to}</dd>
            <dt>Subject</dt>
            <dd>{value.subject ?? "(none)"}</dd>
            <dt>Message-ID</dt>
            <dd>{value.message_id ?? "–"}</dd>
            <dt>Action</dt>
            <dd>{value.action}</dd>
            <dt>Outcome</dt>
            <dd>{value.outcome}</dd>
            <dt>Reply</dt>
            <dd>{value.reply_code === null ? "–" : `${value.reply_code} ${value.reply_text ?? ""}`}</dd>
            <dt>Upstream</dt>
            <dd>{value.upstream ?? "–"}</dd>
            <dt>Authentication</dt>
            <dd>
              <AuthBadges item={value} />
            </dd>
            <dt>Spam score</dt>
            <dd>{value.spam_score ?? "–"}</dd>
            <dt>Size</dt>
            <dd>{value.size === null ? "–" : `${value.size} bytes`}</dd>
            <dt>Duration</dt>
            <dd>{value.duration_ms === null ? "–" : `${value.duration_ms} ms`}</dd>
          </dl>
        )}
      </Show>
    </section>
  );
}
