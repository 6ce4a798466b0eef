// What the user is told: alerts, the connection indicator, the sign-in prompt, and failed
// requests turned into those.

import { forgetToken } from "./session.js";
import { state, stopLive, ui } from "./page.js";
import { h } from "./views.js";

export function showAlert(message, tone = "error") {
  ui.alert.replaceChildren(h("strong", {}, tone === "error" ? "Error: " : "Note: "), message);
  ui.alert.dataset.tone = tone;
  ui.alert.hidden = false;
}

export function clearAlert(tone) {
  if (!tone || ui.alert.dataset.tone === tone) ui.alert.hidden = true;
}

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  live: "Live",
  resyncing: "Reloading: the stream moved on",
  stopped: "Disconnected",
  idle: "Not connected",
};

let countdown = null;

export function setConnection({ state: status, retryInMs, message }) {
  clearInterval(countdown);
  ui.connection.dataset.state = status;
  ui.retry.hidden = status !== "waiting";
  ui.connection.title = message || "";
  if (status === "waiting") {
    const until = Date.now() + retryInMs;
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      ui.connectionText.textContent = `Offline · retrying in ${seconds} s`;
    };
    tick();
    countdown = setInterval(tick, 1000);
  } else {
    ui.connectionText.textContent = CONNECTION_TEXT[status] ?? status;
  }
  if (status === "live") clearAlert("offline");
}

// One place that turns a failed request into what the user sees. Returns true when the
// dashboard cannot go on with this token or workspace.
export function reportError(error) {
  if (error?.kind === "unauthenticated") {
    stopLive();
    forgetToken();
    state.token = null;
    showSignIn(`The server rejected this token: ${error.message} Paste a valid token to continue.`);
    return true;
  }
  if (error?.kind === "forbidden") {
    stopLive();
    setConnection({ state: "stopped", message: error.message });
    showAlert(`This token may not read workspace “${state.workspaceId}”: ${error.message}`);
    ui.summary.textContent = "No access to this workspace.";
    return true;
  }
  if (error?.kind === "network") {
    showAlert(
      "The server cannot be reached right now. The dashboard reconnects by itself.",
      "offline",
    );
    return false;
  }
  showAlert(error?.message || String(error));
  return false;
}

// The header's workspace picker and identity belong to a signed-in view.
export function setSignedIn(signedIn) {
  for (const el of document.querySelectorAll("[data-signed-in]")) el.hidden = !signedIn;
}

export function showSignIn(message = null) {
  setSignedIn(Boolean(state.token) && !message);
  ui.main.hidden = true;
  ui.signin.hidden = false;
  // Back to the running dashboard, if there is one.
  ui.tokenCancel.hidden = !state.live;
  ui.tokenError.textContent = message ?? "";
  ui.tokenError.hidden = !message;
  ui.tokenInput.setAttribute("aria-invalid", String(Boolean(message)));
  clearAlert();
  if (!state.live) setConnection({ state: "idle" });
  ui.tokenInput.focus();
}

export function hideSignIn() {
  setSignedIn(true);
  ui.signin.hidden = true;
  ui.main.hidden = false;
  ui.tokenInput.value = "";
}

function span(minutes) {
  if (minutes < 120) return `${minutes} min`;
  if (minutes < 48 * 60) return `${Math.round(minutes / 60)} h`;
  return `${Math.round(minutes / 1440)} days`;
}

export function describeToken(claims) {
  const parts = [claims.sub ? String(claims.sub) : "Signed in"];
  if (typeof claims.exp === "number") {
    const minutes = Math.round((claims.exp * 1000 - Date.now()) / 60000);
    parts.push(minutes > 0 ? `token expires in ${span(minutes)}` : "token expired");
  }
  return parts.join(" · ");
}
