/**
 * Destination addresses of the zone's account: verification state, resend the verification
 * link (PATCH status "unverified"), add, and delete — with a warning naming the rules that
 * would become inactive, worked out from the account's rules before asking.
 */
import { useState, type FormEvent } from "react";
import type { Address, Rule } from "../api-types.ts";
import { addressesIn } from "../destinations.ts";
import { Empty, Show } from "../states.tsx";
import { useResource } from "../use-resource.ts";
import type { ViewProps } from "./view-props.ts";

export function AddressesView({ api, zone }: ViewProps) {
  const base = `/accounts/${zone.account.id}/email/routing/addresses`;
  const [addresses, reload] = useResource(() => api.all<Address>(base), []);
  const [notice, setNotice] = useState<string | null>(null);
  const [email, setEmail] = useState("");
  const [confirming, setConfirming] = useState<{ address: Address; rules: Rule[] } | null>(null);

  async function act(work: () => Promise<{ messages: { message: string }[] }>, done: string) {
    setNotice(null);
    try {
      const envelope = await work();
      setNotice([done, ...envelope.messages.map((message) => message.message)].join(" "));
      reload();
    } catch (error) {
      setNotice(`Failed: ${(error as Error).message}`);
    }
  }

  async function askDelete(address: Address) {
    const rules = await api.all<Rule>(`/accounts/${zone.account.id}/email/routing/rules`).catch(() => [] as Rule[]);
    setConfirming({ address, rules: rules.filter((rule) => rule.enabled && addressesIn(rule.actions).includes(address.email)) });
  }

  function add(event: FormEvent) {
    event.preventDefault();
    void act(() => api.send("POST", base, { email: email.trim() }), `Verification link sent to ${email.trim()}.`).then(() => setEmail(""));
  }

  return (
    <div className="stack">
      {notice !== null && (
        <p className={notice.startsWith("Failed") ? "notice error" : "notice"} role="status">
          {notice}
        </p>
      )}
      <form className="card row wrap" onSubmit={add} aria-label="Add destination address">
        <div className="field grow">
          <label htmlFor="new-address">New destination address</label>
          <input id="new-address" type="email" required value={email} onChange={(event) => setEmail(event.target.value)} />
        </div>
        <button type="submit" className="primary">
          Add and send verification
        </button>
      </form>
      {confirming !== null && (
        <div className="card confirm" role="alertdialog" aria-labelledby="confirm-title" aria-describedby="confirm-body">
          <h2 id="confirm-title">Delete {confirming.address.email}?</h2>
          <div id="confirm-body">
            {confirming.rules.length === 0 ? (
              <p>No enabled rule forwards to this address.</p>
            ) : (
              <>
                <p>These rules forward to it and will become inactive (mail to them is refused until you fix them):</p>
                <ul data-testid="affected-rules">
                  {confirming.rules.map((rule) => (
                    <li key={rule.id}>{rule.matchers[0]?.value ?? rule.name}</li>
                  ))}
                </ul>
              </>
            )}
          </div>
          <div className="row">
            <button type="button" className="danger" onClick={() => void act(() => api.send("DELETE", `${base}/${confirming.address.id}`), "Address deleted.").then(() => setConfirming(null))}>
              Delete address
            </button>
            <button type="button" className="secondary" onClick={() => setConfirming(null)} autoFocus>
              Keep it
            </button>
          </div>
        </div>
      )}
      <section className="card" aria-labelledby="addresses-title">
        <h2 id="addresses-title">Addresses of {zone.account.name}</h2>
        <Show resource={addresses} what="addresses" retry={reload}>
          {(list) =>
            list.length === 0 ? (
              <Empty title="No destination addresses yet">
                <p>Add the mailbox you want mail forwarded to; its owner confirms it by clicking the link mailroute sends.</p>
              </Empty>
            ) : (
              <div className="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Address</th>
                      <th scope="col">Verification</th>
                      <th scope="col">Added</th>
                      <th scope="col">
                        <span className="visually-hidden">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {list.map((address) => (
                      <tr key={address.id}>
                        <th scope="row">{address.email}</th>
                        <td>{address.verified !== null ? <span className="badge ok">Verified {new Date(address.verified).toLocaleDateString()}</span> : <span className="badge warn">Pending</span>}</td>
                        <td>{new Date(address.created).toLocaleDateString()}</td>
                        <td className="actions">
                          {address.verified === null && (
                            <button type="button" className="secondary small" onClick={() => void act(() => api.send("PATCH", `${base}/${address.id}`, { status: "unverified" }), `Verification link sent again to ${address.email}.`)}>
                              Resend verification
                            </button>
                          )}
                          <button type="button" className="danger small" aria-label={`Delete ${address.email}`} onClick={() => void askDelete(address)}>
                            Delete
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Show>
      </section>
    </div>
  );
}
