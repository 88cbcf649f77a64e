/**
 * Client-side paths: /zones/{zone_id}/{view}. The server falls back to index.html for these,
 * so a reload or a shared link opens the same view. Pure parsing plus a tiny pushState hook.
 */
import { useEffect, useState } from "react";

export const VIEWS = ["overview", "rules", "addresses", "activity", "dns", "workers", "audit", "settings"] as const;
export type View = (typeof VIEWS)[number];

export const VIEW_LABELS: Record<View, string> = {
  overview: "Overview",
  rules: "Routing rules",
  addresses: "Destination addresses",
  activity: "Activity log",
  dns: "DNS records",
  workers: "Email Workers",
  audit: "Audit log",
  settings: "Settings",
};

export interface Place {
  zone: string | null;
  view: View;
}

export function parsePath(pathname: string): Place {
  const match = /^\/zones\/([^/]+)(?:\/([a-z]+))?\/?$/.exec(pathname);
  if (match === null) return { zone: null, view: "overview" };
  const view = (VIEWS as readonly string[]).includes(match[2] ?? "") ? (match[2] as View) : "overview";
  return { zone: decodeURIComponent(match[1]!), view };
}

export function pathFor(place: Place): string {
  return place.zone === null ? "/" : `/zones/${encodeURIComponent(place.zone)}/${place.view}`;
}

export function usePlace(): [Place, (place: Place) => void] {
  const [place, setPlace] = useState(() => parsePath(window.location.pathname));
  useEffect(() => {
    const onPop = () => setPlace(parsePath(window.location.pathname));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const go = (next: Place) => {
    const path = pathFor(next);
    if (path !== window.location.pathname) window.history.pushState(null, "", path);
    setPlace(next);
  };
  return [place, go];
}
