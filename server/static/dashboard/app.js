// The live dashboard: counts, newest runs and one run's detail for a workspace, kept current by
// workflowRunStatusChanged. Everything goes through the public GraphQL API.

import {
  clearAlert,
  describeToken,
  hideSignIn,
  reportError,
  setConnection,
  showSignIn,
} from "./feedback.js";
import { STATUSES, TRIGGERS, label } from "./format.js";
import { LiveRuns } from "./live.js";
import { readUrl, state, stopLive, ui, writeUrl } from "./page.js";
import { RunList } from "./runs.js";
import {
  claimsOf,
  forgetToken,
  initialToken,
  isExpired,
  storeToken,
  workspacesOf,
} from "./session.js";
import {
  loadMore,
  renderAllCounts,
  renderList,
  scheduleDetail,
  scheduleRefresh,
  select,
  snapshot,
} from "./sync.js";
import { h, refreshTimes } from "./views.js";

const SETTLE_MS = 1500;

function useToken(token, requestedWorkspace, { store = false } = {}) {
  const claims = claimsOf(token);
  if (!claims || isExpired(claims)) forgetToken();
  if (!claims) {
    showSignIn("This is not a JWT: expected three base64url parts separated by dots.");
    return;
  }
  if (isExpired(claims)) {
    showSignIn("This token has expired. Paste a fresh one.");
    return;
  }
  const workspaces = workspacesOf(claims);
  const workspaceId = requestedWorkspace || workspaces[0];
  if (!workspaceId) {
    showSignIn("This token names no workspace (its “workspaces” claim is empty).");
    return;
  }
  if (store) storeToken(token);
  state.token = token;
  ui.identity.textContent = describeToken(claims);
  ui.identity.title = `Signed in as ${claims.sub ?? "?"}; workspaces: ${workspaces.join(", ") || "none"}`;
  const choices = workspaces.includes(workspaceId) ? workspaces : [workspaceId, ...workspaces];
  ui.workspace.replaceChildren(...choices.map((w) => h("option", { value: w }, w)));
  hideSignIn();
  openWorkspace(workspaceId);
}

// ---- live ----------------------------------------------------------------------------------

function onEvent(event) {
  const change = state.list.apply(event.run);
  state.refresh.overtaking?.push(event.run);
  if (change) renderList({ changed: change === "added" });
  const selected = state.selectedId;
  if (selected && (event.runId === selected || event.run.parentRunId === selected))
    scheduleDetail();
  scheduleRefresh();
}

async function openWorkspace(workspaceId) {
  stopLive();
  state.generation += 1;
  state.workspaceId = workspaceId;
  state.list = new RunList(state.filters);
  state.counts = null;
  ui.workspace.value = workspaceId;
  ui.workspaceName.textContent = workspaceId;
  document.title = `${workspaceId} · Workflow runs`;
  writeUrl();
  clearAlert();
  renderAllCounts();
  renderList();
  let cursor = null;
  try {
    cursor = await snapshot();
  } catch (error) {
    if (reportError(error)) return;
  }
  if (state.selectedId) select(state.selectedId);
  const generation = state.generation;
  state.live = new LiveRuns({
    token: state.token,
    workspaceId,
    cursor,
    handlers: {
      onEvent,
      onState: setConnection,
      onConnected: (resumedFrom) => {
        if (generation !== state.generation) return;
        // Heals whatever a failed request missed while the server was away.
        scheduleRefresh(0);
        // Without a cursor (a workspace with no stored event yet) the stream starts live once
        // the server has registered the subscription: look again once that has surely happened.
        if (resumedFrom == null) {
          setTimeout(() => generation === state.generation && scheduleRefresh(0), SETTLE_MS);
        }
      },
      onExpired: async () => {
        state.list = new RunList(state.filters);
        return snapshot();
      },
      onFatal: ({ reason, message }) => {
        setConnection({ state: "stopped", message });
        reportError({ kind: reason, message });
      },
    },
  }).start();
}

// ---- controls ------------------------------------------------------------------------------

function applyFilters() {
  const subject = ui.subject.value.trim();
  state.filters = {
    status: ui.status.value || null,
    subjectId: subject || null,
    triggeredBy: ui.trigger.value || null,
  };
  state.generation += 1;
  state.list = new RunList(state.filters);
  writeUrl();
  renderAllCounts();
  renderList();
  scheduleRefresh(0);
}

function pickStatus(status) {
  ui.status.value = state.filters.status === status ? "" : status;
  applyFilters();
}

function wireControls() {
  ui.status.append(...STATUSES.map((s) => h("option", { value: s }, label(s))));
  ui.trigger.append(...TRIGGERS.map((t) => h("option", { value: t }, label(t))));
  ui.status.value = state.filters.status ?? "";
  ui.trigger.value = state.filters.triggeredBy ?? "";
  ui.subject.value = state.filters.subjectId ?? "";

  ui.status.addEventListener("change", applyFilters);
  ui.trigger.addEventListener("change", applyFilters);
  let typing = null;
  ui.subject.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(applyFilters, 300);
  });
  ui.filters.addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(typing);
    applyFilters();
  });
  ui.filters.addEventListener("reset", () => setTimeout(applyFilters));
  ui.more.addEventListener("click", loadMore);
  ui.counts.addEventListener("click", (e) => {
    const card = e.target.closest("button[data-status]");
    if (card) pickStatus(card.dataset.status);
  });
  ui.workspace.addEventListener("change", () => {
    state.selectedId = null;
    ui.detail.hidden = true;
    openWorkspace(ui.workspace.value);
  });

  // Run links: open the detail in place (they stay real links for a new tab).
  document.addEventListener("click", (e) => {
    const link = e.target.closest("a[data-run-id]");
    if (!link || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    select(link.dataset.runId, { focus: true });
  });

  ui.tokenForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const token = ui.tokenInput.value.trim();
    if (!token) {
      showSignIn("Paste a token first.");
      return;
    }
    // Stay on the workspace in the address bar when the new token may read it.
    const current = new URLSearchParams(location.search).get("workspace");
    useToken(token, workspacesOf(claimsOf(token)).includes(current) ? current : null, {
      store: true,
    });
  });
  ui.tokenCancel.addEventListener("click", hideSignIn);
  ui.changeToken.addEventListener("click", () => showSignIn());
  ui.signOut.addEventListener("click", () => {
    forgetToken();
    stopLive();
    state.token = null;
    ui.identity.textContent = "";
    showSignIn();
  });

  ui.retry.addEventListener("click", () => state.live?.retryNow());
  window.addEventListener("online", () => state.live?.retryNow());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") state.live?.retryNow();
  });
  setInterval(() => refreshTimes(), 15_000);
}

function boot() {
  const requestedWorkspace = readUrl();
  wireControls();
  const token = initialToken(window.WORKFLOW_RUNS);
  if (token) useToken(token, requestedWorkspace);
  else showSignIn();
}

boot();
