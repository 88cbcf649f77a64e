/**
 * The signed-in API token, kept in sessionStorage only (gone when the tab closes; never a
 * cookie, so the browser never sends it on its own and there is nothing to forge — no CSRF).
 */
const KEY = "mailroute.token";

export function loadToken(): string | null {
  return window.sessionStorage.getItem(KEY);
}

export function saveToken(token: string): void {
  window.sessionStorage.setItem(KEY, token);
}

export function forgetToken(): void {
  window.sessionStorage.removeItem(KEY);
}
