/**
 * Overview of one zone: summary counts for 24 h / 7 d / 30 d with a line chart over time
 * (from …/email/routing/summary, "not available" when the server has no such route), and the
 * zone's routing status and DNS readiness.
 */
import { useState } from "react";
import type { DnsRecord, ZoneSettings } from "../api-types.ts";
import { Show } from "../states.tsx";
import { OUTCOMES, chartGeometry, type Bucket, type Counts, type Outcome } from "../summary-chart.ts";
import { useResource } from "../use-resource.ts";
import type { ViewProps } from "./view-props.ts";

const RANGES = ["24h", "7d", "30d"] as const;
type Range = (typeof RANGES)[number];
const LABELS: Record<Outcome, string> = { received: "Received", forwarded: "Forwarded", dropped: "Dropped", rejected: "Rejected", delivery_failed: "Delivery failed", deferred: "Deferred", worker: "Worker-handled", queued: "Queued for retry" };
const CHARTED: Outcome[] = ["received", "forwarded", "rejected", "delivery_failed"];

interface Summary {
  range: Range;
  totals: Partial<Counts>;
  series: Bucket[];
}

export function OverviewView({ api, zone }: ViewProps) {
  const [range, setRange] = useState<Range>("24h");
  const [summary, reloadSummary] = useResource(() => api.get<Summary>(`/zones/${zone.id}/email/routing/summary?range=${range}`), [range]);
  const [settings, reloadSettings] = useResource(() => api.get<ZoneSettings>(`/zones/${zone.id}/email/routing`), []);
  const [records] = useResource(() => api.get<DnsRecord[]>(`/zones/${zone.id}/email/routing/dns`), []);
  return (
    <div className="stack">
      <section aria-labelledby="status-title" className="card">
        <h2 id="status-title">Status</h2>
        <Show resource={settings} what="zone status" retry={reloadSettings}>
          {(value) => (
            <dl className="facts">
              <dt>Email Routing</dt>
              <dd>
                <span className={`badge ${value.enabled ? "ok" : "off"}`}>{value.enabled ? "Enabled" : "Disabled"}</span>
              </dd>
              <dt>DNS</dt>
              <dd data-testid="dns-status">
                {value.status === "ready" ? (
                  <span className="badge ok">Ready</span>
                ) : (
                  <>
                    <span className="badge warn">Not confirmed ({value.status})</span>{" "}
                    {records.state === "ready" ? `Publish the ${records.value.length} records on the DNS records page, then run mailroute doctor.` : "See the DNS records page."}
                  </>
                )}
              </dd>
              <dt>Sub-addressing</dt>
              <dd>{value.support_subaddress ? "On (user+tag@ goes to user@)" : "Off"}</dd>
            </dl>
          )}
        </Show>
      </section>
      <section aria-labelledby="summary-title" className="card">
        <div className="row spread">
          <h2 id="summary-title">Mail</h2>
          <div role="group" aria-label="Time range" className="segmented">
            {RANGES.map((value) => (
              <button key={value} type="button" aria-pressed={value === range} onClick={() => setRange(value)}>
                {value}
              </button>
            ))}
          </div>
        </div>
        <Show resource={summary} what="summary" retry={reloadSummary}>
          {(value) => (
            <>
              <ul className="tiles" data-testid="summary-totals">
                {OUTCOMES.map((outcome) => (
                  <li key={outcome} className={`tile tile-${outcome}`}>
                    <span className="tile-count">{value.totals[outcome] ?? 0}</span>
                    <span className="tile-label">{LABELS[outcome]}</span>
                  </li>
                ))}
              </ul>
              <Chart series={value.series} />
            </>
          )}
        </Show>
      </section>
    </div>
  );
}

function Chart({ series }: { series: Bucket[] }) {
  if (series.length === 0) return <p className="muted">No mail in this period yet.</p>;
  const geometry = chartGeometry(series, CHARTED);
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${geometry.width} ${geometry.height}`} role="img" aria-label={`Messages over time; peak ${geometry.max} per bucket`} preserveAspectRatio="none">
        {geometry.lines.map((line) => (
          <polyline key={line.outcome} points={line.points} className={`line line-${line.outcome}`} fill="none" />
        ))}
      </svg>
      <figcaption className="legend">
        {CHARTED.map((outcome) => (
          <span key={outcome} className={`key key-${outcome}`}>
            {LABELS[outcome]}
          </span>
        ))}
        <span className="muted">
          {new Date(series[0]!.start).toLocaleString()} – {new Date(series[series.length - 1]!.start).toLocaleString()}
        </span>
      </figcaption>
    </figure>
  );
}
