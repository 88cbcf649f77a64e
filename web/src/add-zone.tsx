/**
 * Adding a domain from the dashboard (a user who never opens a shell can start routing one):
 * POST /zones with the name and the account the token belongs to (GET /accounts lists the
 * token's own), exactly the call a script makes. The server validates the name and answers
 * with the field and reason, shown as given.
 */
import { useState, type FormEvent } from "react";
import type { ApiClient } from "./api-client.ts";
import type { Zone } from "./api-types.ts";

export function AddZone({ api, onAdded }: { api: ApiClient; onAdded: (zone: Zone) => void }) {
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const accounts = await api.get<{ id: string }[]>("/accounts");
      if (accounts.length === 0) throw new Error("this token belongs to no account");
      const created = await api.send<Zone>("POST", "/zones", { name: name.trim(), account: { id: accounts[0]!.id } });
      setName("");
      onAdded(created.result);
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="add-zone" onSubmit={submit} aria-label="Add a domain">
      <label>
        Domain to route here <input value={name} onChange={(event) => setName(event.target.value)} placeholder="example.com" autoComplete="off" />
      </label>
      <button type="submit" className="primary" disabled={busy || name.trim() === ""}>
        {busy ? "Adding…" : "Add domain"}
      </button>
      {error !== null && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <p className="hint">Then point the domain's MX record at this server: the DNS records view lists what to publish.</p>
    </form>
  );
}
