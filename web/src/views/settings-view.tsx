/**
 * Zone settings (PATCH /zones/{id}/email/routing): routing on/off, sub-addressing, dot-
 * insensitive matching, outbound DKIM signing and the inbound authentication policy.
 */
import { useState, type FormEvent } from "react";
import type { ZoneSettings } from "../api-types.ts";
import { Show } from "../states.tsx";
import { useResource } from "../use-resource.ts";
import type { ViewProps } from "./view-props.ts";

export function SettingsView({ api, zone }: ViewProps) {
  const [settings, reload] = useResource(() => api.get<ZoneSettings>(`/zones/${zone.id}/email/routing`), []);
  return (
    <Show resource={settings} what="settings" retry={reload}>
      {(value) => <SettingsForm initial={value} save={(body) => api.send<ZoneSettings>("PATCH", `/zones/${zone.id}/email/routing`, body).then((envelope) => envelope.result)} />}
    </Show>
  );
}

function SettingsForm({ initial, save }: { initial: ZoneSettings; save: (body: object) => Promise<ZoneSettings> }) {
  const [draft, setDraft] = useState(initial);
  const [notice, setNotice] = useState<string | null>(null);
  const flag = (key: "enabled" | "support_subaddress" | "dot_insensitive" | "sign_outbound", label: string, hint: string) => (
    <label className="check">
      <input type="checkbox" checked={draft[key]} onChange={(event) => setDraft({ ...draft, [key]: event.target.checked })} /> {label}
      <span className="hint">{hint}</span>
    </label>
  );
  const auth = (key: "enforce_dmarc" | "require_auth" | "reject_quarantine", label: string, hint: string) => (
    <label className="check">
      <input type="checkbox" checked={draft.authentication[key]} onChange={(event) => setDraft({ ...draft, authentication: { ...draft.authentication, [key]: event.target.checked } })} /> {label}
      <span className="hint">{hint}</span>
    </label>
  );
  async function submit(event: FormEvent) {
    event.preventDefault();
    setNotice(null);
    try {
      const saved = await save({ enabled: draft.enabled, support_subaddress: draft.support_subaddress, dot_insensitive: draft.dot_insensitive, sign_outbound: draft.sign_outbound, authentication: draft.authentication });
      setDraft(saved);
      setNotice("Settings saved.");
    } catch (error) {
      setNotice(`Failed: ${(error as Error).message}`);
    }
  }
  return (
    <form className="stack" onSubmit={submit} aria-label="Zone settings">
      <fieldset className="card">
        <legend>Routing</legend>
        {flag("enabled", "Email Routing enabled", "When off, mail to this zone is refused.")}
        {flag("support_subaddress", "Sub-addressing", "user+anything@ goes to the rule for user@.")}
        {flag("dot_insensitive", "Ignore dots in local parts", "first.last@ matches firstlast@.")}
        {flag("sign_outbound", "Sign forwarded mail (DKIM/ARC)", "Adds this zone's signature so receivers can trust the forward.")}
      </fieldset>
      <fieldset className="card">
        <legend>Inbound authentication policy</legend>
        {auth("enforce_dmarc", "Enforce DMARC", "Refuse mail whose sender domain's DMARC policy says reject.")}
        {auth("reject_quarantine", "Refuse DMARC quarantine too", "Also refuse mail the sender domain wants quarantined.")}
        {auth("require_auth", "Require SPF or DKIM", "Refuse mail that neither SPF nor DKIM authenticates.")}
        <div className="field">
          <label htmlFor="spam-threshold">Spam threshold (0–5, empty for off)</label>
          <input
            id="spam-threshold"
            type="number"
            min={0}
            max={5}
            step={0.5}
            value={draft.authentication.spam_threshold ?? ""}
            onChange={(event) => setDraft({ ...draft, authentication: { ...draft.authentication, spam_threshold: event.target.value === "" ? null : Number(event.target.value) } })}
          />
        </div>
      </fieldset>
      {notice !== null && (
        <p className={notice.startsWith("Failed") ? "notice error" : "notice"} role="status">
          {notice}
        </p>
      )}
      <div>
        <button type="submit" className="primary">
          Save settings
        </button>
      </div>
    </form>
  );
}
