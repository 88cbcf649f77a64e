/**
 * Editor for forward destinations: one block per destination (each gets its own copy), and
 * inside it the failover chain — the primary and its backups in order — so `a@x:b@y, c@z` is
 * edited as "Destination 1: a@x, backup b@y; Destination 2: c@z". Every input is labelled.
 */
import type { Chain } from "../destinations.ts";

export function DestinationsEditor({ chains, onChange, verified }: { chains: Chain[]; onChange: (chains: Chain[]) => void; verified: string[] }) {
  const set = (index: number, chain: Chain) => onChange(chains.map((current, at) => (at === index ? chain : current)));
  return (
    <fieldset className="destinations">
      <legend>Destinations</legend>
      <p className="hint">Each destination gets its own copy. A backup is tried only if the address before it cannot take the message.</p>
      <datalist id="verified-addresses">
        {verified.map((email) => (
          <option key={email} value={email} />
        ))}
      </datalist>
      <ol>
        {chains.map((chain, index) => (
          <li key={index} className="chain">
            {chain.map((address, position) => {
              const id = `dest-${index}-${position}`;
              const label = position === 0 ? `Destination ${index + 1}` : `Backup ${position} for destination ${index + 1}`;
              return (
                <div key={position} className="chain-step">
                  {position > 0 && <span className="arrow" aria-hidden="true">↳ if that fails</span>}
                  <label htmlFor={id}>{label}</label>
                  <div className="row">
                    <input id={id} type="email" list="verified-addresses" required={position === 0} value={address} onChange={(event) => set(index, chain.map((value, at) => (at === position ? event.target.value : value)))} />
                    {(position > 0 || chains.length > 1) && (
                      <button type="button" className="link" aria-label={`Remove ${label.toLowerCase()}`} onClick={() => (position === 0 && chain.length === 1 ? onChange(chains.filter((_, at) => at !== index)) : set(index, chain.filter((_, at) => at !== position)))}>
                        Remove
                      </button>
                    )}
                  </div>
                </div>
              );
            })}
            <button type="button" className="secondary small" onClick={() => set(index, [...chain, ""])}>
              Add backup for destination {index + 1}
            </button>
          </li>
        ))}
      </ol>
      <button type="button" className="secondary" onClick={() => onChange([...chains, [""]])}>
        Add destination
      </button>
    </fieldset>
  );
}
