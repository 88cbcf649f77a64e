/**
 * The dashboard shell: sign-in with an API token, then a zone picker and the views of one
 * zone. Everything is read and changed through the public REST API with that token, so a
 * token sees only its own account's zones, exactly as a script would.
 */
import { AddZone } from "./add-zone.tsx";
import { useState, type FormEvent } from "react";
import { ApiClient, ApiFailure } from "./api-client.ts";
import type { Zone } from "./api-types.ts";
import { VIEWS, VIEW_LABELS, usePlace, type View } from "./router.ts";
import { forgetToken, loadToken, saveToken } from "./session.ts";
import { Empty, Show } from "./states.tsx";
import { useResource } from "./use-resource.ts";
import { ActivityView } from "./views/activity-view.tsx";
import { AddressesView } from "./views/addresses-view.tsx";
import { AuditView } from "./views/audit-view.tsx";
import { DnsView } from "./views/dns-view.tsx";
import { OverviewView } from "./views/overview-view.tsx";
import { RulesView } from "./views/rules-view.tsx";
import { SettingsView } from "./views/settings-view.tsx";
import { WorkersView } from "./views/workers-view.tsx";

export function App() {
  const [token, setToken] = useState(loadToken);
  if (token === null) return <SignIn onSignedIn={(value) => (saveToken(value), setToken(value))} />;
  return (
    <Dashboard
      api={new ApiClient(token)}
      onSignOut={() => {
        forgetToken();
        setToken(null);
      }}
    />
  );
}

function SignIn({ onSignedIn }: { onSignedIn: (token: string) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await new ApiClient(value.trim()).get("/user/tokens/verify");
      onSignedIn(value.trim());
    } catch (failure) {
      setError(failure instanceof ApiFailure && (failure.status === 401 || failure.status === 403) ? "That token was not accepted. Check it and try again." : (failure as Error).message);
    } finally {
      setBusy(false);
    }
  }
  return (
    <main className="sign-in">
      <form onSubmit={submit} className="card" aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">mailroute</h1>
        <p>Sign in with an API token (<code>mailroute token create …</code>) or the operator token printed by <code>mailroute start</code>.</p>
        <label htmlFor="token">API token</label>
        <input id="token" name="token" type="password" autoComplete="off" required value={value} onChange={(event) => setValue(event.target.value)} />
        {error !== null && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy || value.trim() === ""}>
          {busy ? "Checking…" : "Sign in"}
        </button>
        <p className="hint">The token stays in this browser tab only (sessionStorage) and is sent as a Bearer header; no cookies are set.</p>
      </form>
    </main>
  );
}

function Dashboard({ api, onSignOut }: { api: ApiClient; onSignOut: () => void }) {
  const [place, go] = usePlace();
  const [zones, reloadZones] = useResource(() => api.all<Zone>("/zones"), []);
  return (
    <div className="shell">
      <a className="skip" href="#content">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">mailroute</span>
        {zones.state === "ready" && zones.value.length > 0 && (
          <label className="zone-picker">
            <span>Zone</span>
            <select value={place.zone ?? ""} onChange={(event) => go({ zone: event.target.value, view: place.view })} aria-label="Zone">
              <option value="" disabled>
                Choose a zone
              </option>
              {zones.value.map((zone) => (
                <option key={zone.id} value={zone.id}>
                  {zone.name}
                </option>
              ))}
            </select>
          </label>
        )}
        <button type="button" className="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <Show resource={zones} what="zones" retry={reloadZones}>
        {(list) => {
          if (list.length === 0) {
            return (
              <main id="content" className="content">
                <Empty title="No zones yet">
                  <p>This token's account routes no domain yet. Add one here (or with <code>mailroute domain add example.com</code>, or <code>POST /client/v4/zones</code>).</p>
                </Empty>
                <AddZone api={api} onAdded={(added) => (reloadZones(), go({ zone: added.id, view: "dns" }))} />
              </main>
            );
          }
          const zone = list.find((candidate) => candidate.id === place.zone);
          if (zone === undefined) {
            return (
              <main id="content" className="content">
                <h1>Zones</h1>
                <ul className="zone-list">
                  {list.map((candidate) => (
                    <li key={candidate.id}>
                      <button type="button" className="zone-card" onClick={() => go({ zone: candidate.id, view: "overview" })}>
                        <strong>{candidate.name}</strong>
                        <span>{candidate.account.name}</span>
                      </button>
                    </li>
                  ))}
                </ul>
                <AddZone api={api} onAdded={(added) => (reloadZones(), go({ zone: added.id, view: "dns" }))} />
              </main>
            );
          }
          return (
            <div className="with-nav">
              <nav aria-label="Views" className="side">
                <ul>
                  {VIEWS.map((view) => (
                    <li key={view}>
                      <a
                        href={`/zones/${encodeURIComponent(zone.id)}/${view}`}
                        aria-current={view === place.view ? "page" : undefined}
                        onClick={(event) => {
                          event.preventDefault();
                          go({ zone: zone.id, view });
                        }}
                      >
                        {VIEW_LABELS[view]}
                      </a>
                    </li>
                  ))}
                </ul>
              </nav>
              <main id="content" className="content" tabIndex={-1}>
                <h1>
                  {VIEW_LABELS[place.view]} <span className="muted">· {zone.name}</span>
                </h1>
                <ViewFor key={`${zone.id}-${place.view}`} view={place.view} api={api} zone={zone} />
              </main>
            </div>
          );
        }}
      </Show>
    </div>
  );
}

function ViewFor({ view, api, zone }: { view: View; api: ApiClient; zone: Zone }) {
  const props = { api, zone };
  switch (view) {
    case "overview":
      return <OverviewView {...props} />;
    case "rules":
      return <RulesView {...props} />;
    case "addresses":
      return <AddressesView {...props} />;
    case "activity":
      return <ActivityView {...props} />;
    case "dns":
      return <DnsView {...props} />;
    case "workers":
      return <WorkersView {...props} />;
    case "audit":
      return <AuditView {...props} />;
    case "settings":
      return <SettingsView {...props} />;
  }
}
