/**
 * The designed non-content states shared by every view: loading, empty, failed, and "not
 * available on this server" (a route this mailroute does not have), so no view is ever blank.
 */
import type { ReactNode } from "react";
import { NotAvailable } from "./api-client.ts";
import type { Resource } from "./use-resource.ts";

export function Loading({ what }: { what: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state state-empty" data-testid="empty-state">
      <h3>{title}</h3>
      {children}
    </div>
  );
}

export function Failed({ error, retry }: { error: Error; retry?: () => void }) {
  if (error instanceof NotAvailable) {
    return (
      <div className="state state-unavailable" data-testid="not-available">
        <h3>Not available on this server</h3>
        <p>This mailroute does not offer this view yet ({error.message.replace(/ is not available on this server$/, "")}). Update mailroute to get it; the rest of the dashboard works.</p>
      </div>
    );
  }
  return (
    <div className="state state-error" role="alert">
      <h3>Something went wrong</h3>
      <p>{error.message}</p>
      {retry !== undefined && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** Renders a resource: its loading and failure states, or `children` with the value. */
export function Show<T>({ resource, what, retry, children }: { resource: Resource<T>; what: string; retry?: () => void; children: (value: T) => ReactNode }) {
  if (resource.state === "loading") return <Loading what={what} />;
  if (resource.state === "error") return <Failed error={resource.error} retry={retry} />;
  return <>{children(resource.value)}</>;
}
