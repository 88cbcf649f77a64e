/**
 * Email Workers: lists the account's worker scripts from /accounts/{id}/workers/scripts
 * (Cloudflare's path); a token without Workers Scripts Read gets a state naming that permission,
 * and a server without the route (an older mailroute) a designed placeholder pointing to the CLI.
 */
import { Empty, Show } from "../states.tsx";
import { NotAvailable } from "../api-client.ts";
import { useResource } from "../use-resource.ts";
import type { ViewProps } from "./view-props.ts";

interface Script {
  id: string;
  modified_on?: string;
  created_on?: string;
}

export function WorkersView({ api, zone }: ViewProps) {
  const [scripts, reload] = useResource(() => api.get<Script[]>(`/accounts/${zone.account.id}/workers/scripts`), []);
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
          <ul className="records">
            {list.map((script) => (
              <li key={script.id} className="record">
                <strong>{script.id}</strong> <span className="muted">deployed {script.modified_on === undefined ? "–" : new Date(script.modified_on).toLocaleString()}</span>
              </li>
            ))}
          </ul>
        )
      }
    </Show>
  );
}
