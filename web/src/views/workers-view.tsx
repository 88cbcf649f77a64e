/**
 * Email Workers: lists the account's worker scripts from /accounts/{id}/workers/scripts
 * (Cloudflare's path) with their deployed version, time and bindings; choosing one shows its
 * detail (console output, KV browser: worker-detail.tsx). A token without Workers Scripts Read
 * gets a state naming that permission, and a server without the route (an older mailroute) a
 * designed placeholder pointing to the CLI.
 */
import { useState } from "react";
import { Empty, Show } from "../states.tsx";
import { NotAvailable } from "../api-client.ts";
import { useResource } from "../use-resource.ts";
import type { ViewProps } from "./view-props.ts";
import { WorkerDetail, type WorkerScript } from "./worker-detail.tsx";

export function WorkersView({ api, zone }: ViewProps) {
  const [scripts, reload] = useResource(() => api.get<WorkerScript[]>(`/accounts/${zone.account.id}/workers/scripts`), []);
  const [chosen, setChosen] = useState<string | null>(null);
  if (scripts.state === "error" && (scripts.error instanceof NotAvailable || (scripts.error as { status?: number }).status === 404)) {
    return (
      <div className="state state-unavailable" data-testid="workers-placeholder">
        <h3>Email Workers are managed from the command line</h3>
        <p>This server does not list workers over the API yet. Deploy and inspect them with:</p>
        <pre>
          <code>{`npx mailroute worker deploy my-worker ./src/index.ts\nnpx mailroute worker list\nnpx mailroute worker tail my-worker\nnpx mailroute rule add hello@${zone.name} --worker my-worker`}</code>
        </pre>
        <p>Rules that send mail to a worker appear under Routing rules.</p>
      </div>
    );
  }
  if (scripts.state === "error" && (scripts.error as { status?: number }).status === 403) {
    // a token made for email routing alone: say which permission the view needs, not "something went wrong"
    return (
      <div className="state state-unavailable" data-testid="workers-forbidden">
        <h3>This token cannot read Email Workers</h3>
        <p>Sign in with a token that has the Workers Scripts Read permission to list this account's workers.</p>
      </div>
    );
  }
  return (
    <Show resource={scripts} what="workers" retry={reload}>
      {(list) =>
        list.length === 0 ? (
          <Empty title="No Email Workers deployed" />
        ) : (
          <>
            <ul className="records">
              {list.map((script) => (
                <li key={script.id} className="record">
                  <button type="button" onClick={() => setChosen(script.id)} aria-pressed={chosen === script.id} aria-label={`show worker ${script.id}`}>
                    <strong>{script.id}</strong>
                  </button>{" "}
                  <span className="muted">
                    version {(script.version ?? "").slice(0, 12) || "–"}, deployed {script.modified_on === undefined ? "–" : new Date(script.modified_on).toLocaleString()}, {(script.bindings ?? []).length} binding(s)
                  </span>
                </li>
              ))}
            </ul>
            {list
              .filter((script) => script.id === chosen)
              .map((script) => (
                <WorkerDetail key={script.id} api={api} account={zone.account.id} script={script} />
              ))}
          </>
        )
      }
    </Show>
  );
}
