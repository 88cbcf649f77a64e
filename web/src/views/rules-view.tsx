/**
 * Routing rules of a zone: each custom address with its action and destinations (failover
 * chains spelled out), status (inactive rules say why), enable/disable, edit, delete, create;
 * and the catch-all. All through …/email/routing/rules and …/rules/catch_all.
 */
import { useState, type FormEvent } from "react";
import type { Address, CatchAll, Rule, RuleAction } from "../api-types.ts";
import { formatDestinations, parseDestinations, validateChains, type Chain } from "../destinations.ts";
import { Empty, Show } from "../states.tsx";
import { useResource } from "../use-resource.ts";
import { DestinationsEditor } from "./destinations-editor.tsx";
import type { ViewProps } from "./view-props.ts";

type ActionKind = "forward" | "drop" | "worker";

interface Draft {
  id: string | null;
  name: string;
  address: string;
  kind: ActionKind;
  chains: Chain[];
  worker: string;
  enabled: boolean;
}

function draftOf(rule: Rule | null): Draft {
  const action = rule?.actions[0];
  const address = rule?.matchers.find((matcher) => matcher.type === "literal")?.value ?? "";
  const kind = (action?.type === "drop" || action?.type === "worker" ? action.type : "forward") as ActionKind;
  return {
    id: rule?.id ?? null,
    name: rule?.name ?? "",
    address,
    kind,
    chains: kind === "forward" && action !== undefined ? parseDestinations(action.value ?? []) : [[""]],
    worker: kind === "worker" ? (action?.value?.[0] ?? "") : "",
    enabled: rule?.enabled ?? true,
  };
}

function actionsOf(draft: Draft): RuleAction[] {
  if (draft.kind === "drop") return [{ type: "drop" }];
  if (draft.kind === "worker") return [{ type: "worker", value: [draft.worker.trim()] }];
  return [{ type: "forward", value: formatDestinations(draft.chains) }];
}

export function ActionSummary({ actions }: { actions: RuleAction[] }) {
  const action = actions[0];
  if (action === undefined) return <span className="muted">No action</span>;
  if (action.type === "drop") return <span className="badge off">Drop</span>;
  if (action.type === "reject") return <span className="badge warn">Reject: {action.value?.[0]}</span>;
  if (action.type === "worker") return <span>Worker <code>{action.value?.[0]}</code></span>;
  const chains = parseDestinations(action.value ?? []);
  return (
    <ul className="chains" aria-label="Forwards to">
      {chains.map((chain, index) => (
        <li key={index}>
          <span className="primary-dest">{chain[0]}</span>
          {chain.slice(1).map((backup) => (
            <span key={backup} className="backup">
              <span aria-hidden="true"> → </span>
              <span className="visually-hidden">, backup </span>
              {backup}
            </span>
          ))}
        </li>
      ))}
    </ul>
  );
}

export function RulesView({ api, zone }: ViewProps) {
  const base = `/zones/${zone.id}/email/routing/rules`;
  const [rules, reload] = useResource(() => api.all<Rule>(base), []);
  const [catchAll, reloadCatchAll] = useResource(() => api.get<CatchAll>(`${base}/catch_all`), []);
  const [addresses] = useResource(() => api.all<Address>(`/accounts/${zone.account.id}/email/routing/addresses`), []);
  const [editing, setEditing] = useState<Draft | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const verified = addresses.state === "ready" ? addresses.value.filter((address) => address.verified !== null).map((address) => address.email) : [];

  async function act(work: () => Promise<unknown>, done: string) {
    setNotice(null);
    try {
      await work();
      setNotice(done);
      reload();
    } catch (error) {
      setNotice(`Failed: ${(error as Error).message}`);
    }
  }

  const toggle = (rule: Rule) =>
    act(() => api.send("PUT", `${base}/${rule.id}`, { name: rule.name, enabled: !rule.enabled, priority: rule.priority, matchers: rule.matchers, actions: rule.actions }), `Rule ${rule.enabled ? "disabled" : "enabled"}.`);
  const remove = (rule: Rule) => {
    if (window.confirm(`Delete the rule for ${rule.matchers[0]?.value ?? rule.name}?`)) void act(() => api.send("DELETE", `${base}/${rule.id}`), "Rule deleted.");
  };

  return (
    <div className="stack">
      {notice !== null && (
        <p className={notice.startsWith("Failed") ? "notice error" : "notice"} role="status">
          {notice}
        </p>
      )}
      <section className="card" aria-labelledby="rules-title">
        <div className="row spread">
          <h2 id="rules-title">Custom addresses</h2>
          <button type="button" className="primary" onClick={() => setEditing(draftOf(null))}>
            Create address
          </button>
        </div>
        {editing !== null && <RuleForm draft={editing} zoneName={zone.name} verified={verified} onCancel={() => setEditing(null)} onSave={(draft) => act(() => (draft.id === null ? api.send("POST", base, bodyOf(draft)) : api.send("PUT", `${base}/${draft.id}`, bodyOf(draft))), draft.id === null ? "Rule created." : "Rule saved.").then(() => setEditing(null))} />}
        <Show resource={rules} what="rules" retry={reload}>
          {(list) =>
            list.length === 0 ? (
              <Empty title="No custom addresses yet">
                <p>Create one to forward mail for an address at {zone.name}.</p>
              </Empty>
            ) : (
              <div className="table-wrap">
                <table className="rules">
                  <thead>
                    <tr>
                      <th scope="col">Address</th>
                      <th scope="col">Action</th>
                      <th scope="col">Status</th>
                      <th scope="col">
                        <span className="visually-hidden">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {list.map((rule) => {
                      const address = rule.matchers.find((matcher) => matcher.type === "literal")?.value ?? rule.name;
                      return (
                        <tr key={rule.id} data-rule={address}>
                          <th scope="row">
                            {address}
                            {rule.name !== "" && rule.name !== address && <div className="muted small">{rule.name}</div>}
                          </th>
                          <td>
                            <ActionSummary actions={rule.actions} />
                          </td>
                          <td>
                            <span className={`badge ${rule.status === "active" ? "ok" : rule.status === "inactive" ? "warn" : "off"}`}>{rule.status ?? (rule.enabled ? "active" : "disabled")}</span>
                            {(rule.inactive_reasons ?? []).map((reason) => (
                              <div key={reason} className="reason">
                                {reason}
                              </div>
                            ))}
                          </td>
                          <td className="actions">
                            <button type="button" className="secondary small" onClick={() => void toggle(rule)} aria-label={`${rule.enabled ? "Disable" : "Enable"} ${address}`}>
                              {rule.enabled ? "Disable" : "Enable"}
                            </button>
                            <button type="button" className="secondary small" onClick={() => setEditing(draftOf(rule))} aria-label={`Edit ${address}`}>
                              Edit
                            </button>
                            <button type="button" className="danger small" onClick={() => remove(rule)} aria-label={`Delete ${address}`}>
                              Delete
                            </button>
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </div>
            )
          }
        </Show>
      </section>
      <section className="card" aria-labelledby="catch-all-title">
        <h2 id="catch-all-title">Catch-all</h2>
        <Show resource={catchAll} what="catch-all" retry={reloadCatchAll}>
          {(value) => <CatchAllEditor value={value} verified={verified} onSave={(body) => act(() => api.send("PUT", `${base}/catch_all`, body), "Catch-all saved.").then(reloadCatchAll)} />}
        </Show>
      </section>
    </div>
  );
}

function bodyOf(draft: Draft) {
  return { name: draft.name.trim() === "" ? draft.address.trim() : draft.name.trim(), enabled: draft.enabled, matchers: [{ type: "literal", field: "to", value: draft.address.trim() }], actions: actionsOf(draft) };
}

function RuleForm({ draft: initial, zoneName, verified, onCancel, onSave }: { draft: Draft; zoneName: string; verified: string[]; onCancel: () => void; onSave: (draft: Draft) => void }) {
  const [draft, setDraft] = useState(initial);
  const [problems, setProblems] = useState<string[]>([]);
  const update = (patch: Partial<Draft>) => setDraft((current) => ({ ...current, ...patch }));
  function submit(event: FormEvent) {
    event.preventDefault();
    const found = [...(draft.address.trim().toLowerCase().endsWith(`@${zoneName}`) ? [] : [`The address must end in @${zoneName}.`]), ...(draft.kind === "forward" ? validateChains(draft.chains) : []), ...(draft.kind === "worker" && draft.worker.trim() === "" ? ["Name the worker."] : [])];
    setProblems(found);
    if (found.length === 0) onSave(draft);
  }
  return (
    <form className="rule-form" onSubmit={submit} aria-label={draft.id === null ? "Create address" : "Edit address"}>
      <div className="field">
        <label htmlFor="rule-address">Custom address</label>
        <input id="rule-address" type="email" required value={draft.address} placeholder={`hello@${zoneName}`} onChange={(event) => update({ address: event.target.value })} />
      </div>
      <div className="field">
        <label htmlFor="rule-name">Name (optional)</label>
        <input id="rule-name" value={draft.name} onChange={(event) => update({ name: event.target.value })} />
      </div>
      <div className="field">
        <label htmlFor="rule-action">Action</label>
        <select id="rule-action" value={draft.kind} onChange={(event) => update({ kind: event.target.value as ActionKind })}>
          <option value="forward">Send to addresses</option>
          <option value="drop">Drop</option>
          <option value="worker">Send to an Email Worker</option>
        </select>
      </div>
      {draft.kind === "forward" && <DestinationsEditor chains={draft.chains} verified={verified} onChange={(chains) => update({ chains })} />}
      {draft.kind === "worker" && (
        <div className="field">
          <label htmlFor="rule-worker">Worker name</label>
          <input id="rule-worker" value={draft.worker} onChange={(event) => update({ worker: event.target.value })} />
        </div>
      )}
      {problems.length > 0 && (
        <ul className="form-error" role="alert">
          {problems.map((problem) => (
            <li key={problem}>{problem}</li>
          ))}
        </ul>
      )}
      <div className="row">
        <button type="submit" className="primary">
          Save
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function CatchAllEditor({ value, verified, onSave }: { value: CatchAll; verified: string[]; onSave: (body: { enabled: boolean; matchers: { type: string }[]; actions: RuleAction[] }) => void }) {
  const action = value.actions[0];
  const [kind, setKind] = useState<ActionKind>(action?.type === "forward" ? "forward" : action?.type === "worker" ? "worker" : "drop");
  const [chains, setChains] = useState<Chain[]>(action?.type === "forward" ? parseDestinations(action.value ?? []) : [[""]]);
  const [enabled, setEnabled] = useState(value.enabled);
  const [worker, setWorker] = useState(action?.type === "worker" ? (action.value?.[0] ?? "") : "");
  const [problems, setProblems] = useState<string[]>([]);
  return (
    <form
      className="stack"
      aria-label="Catch-all"
      onSubmit={(event) => {
        event.preventDefault();
        const found = enabled && kind === "forward" ? validateChains(chains) : [];
        setProblems(found);
        if (found.length > 0) return;
        const actions: RuleAction[] = kind === "forward" ? [{ type: "forward", value: formatDestinations(chains) }] : kind === "worker" ? [{ type: "worker", value: [worker.trim()] }] : [{ type: "drop" }];
        onSave({ enabled, matchers: [{ type: "all" }], actions });
      }}
    >
      <p className="muted">Mail to any other address at this zone. Currently: {value.enabled ? <ActionSummary actions={value.actions} /> : "off (refused at RCPT)"}</p>
      <label className="check">
        <input type="checkbox" checked={enabled} onChange={(event) => setEnabled(event.target.checked)} /> Catch-all enabled
      </label>
      <div className="field">
        <label htmlFor="catch-all-action">Catch-all action</label>
        <select id="catch-all-action" value={kind} onChange={(event) => setKind(event.target.value as ActionKind)}>
          <option value="drop">Drop</option>
          <option value="forward">Send to addresses</option>
          <option value="worker">Send to an Email Worker</option>
        </select>
      </div>
      {kind === "forward" && <DestinationsEditor chains={chains} verified={verified} onChange={setChains} />}
      {kind === "worker" && (
        <div className="field">
          <label htmlFor="catch-all-worker">Worker name</label>
          <input id="catch-all-worker" value={worker} onChange={(event) => setWorker(event.target.value)} />
        </div>
      )}
      {problems.length > 0 && (
        <ul className="form-error" role="alert">
          {problems.map((problem) => (
            <li key={problem}>{problem}</li>
          ))}
        </ul>
      )}
      <div>
        <button type="submit" className="primary">
          Save catch-all
        </button>
      </div>
    </form>
  );
}
