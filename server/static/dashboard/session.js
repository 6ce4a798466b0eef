// The access token: from the URL fragment (#token=…, which never reaches a server log), the
// token field, or the server's dev-mode config; kept in this tab's sessionStorage only.

export const TOKEN_KEY = "workflow-runs-token";

export function claimsOf(token) {
  try {
    const part = token.split(".")[1];
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

export function workspacesOf(claims) {
  const list = claims?.workspaces;
  return Array.isArray(list) ? list.filter((w) => typeof w === "string") : [];
}

export function isExpired(claims, now = Date.now()) {
  return typeof claims?.exp === "number" && claims.exp * 1000 <= now;
}

function read() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token) {
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Storage disabled: the token lives for this page only.
  }
}

export function forgetToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing stored
  }
}

// Takes a #token=… fragment into sessionStorage and removes it from the address bar, so it is
// neither bookmarked nor shared with the page's URL. Returns the token to use, or null.
export function initialToken(config) {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  if (given) {
    storeToken(given.trim());
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(
      history.state,
      "",
      location.pathname + location.search + (rest ? `#${rest}` : ""),
    );
  }
  return read() || config?.token || null;
}
