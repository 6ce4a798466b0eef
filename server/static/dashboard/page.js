// The page's elements, its state, and the view it keeps in the address bar.

import { STATUSES, TRIGGERS } from "./format.js";

const $ = (id) => document.getElementById(id);
export const ui = {
  main: $("main"),
  signin: $("signin"),
  tokenForm: $("token-form"),
  tokenInput: $("token-input"),
  tokenError: $("token-error"),
  tokenCancel: $("token-cancel"),
  alert: $("alert"),
  connection: $("connection"),
  connectionText: $("connection-text"),
  retry: $("retry-now"),
  identity: $("identity"),
  changeToken: $("change-token"),
  signOut: $("sign-out"),
  workspace: $("workspace"),
  workspaceName: $("workspace-name"),
  counts: $("counts"),
  countsNote: $("counts-note"),
  filters: $("filters"),
  status: $("filter-status"),
  subject: $("filter-subject"),
  trigger: $("filter-trigger"),
  rows: $("runs-body"),
  empty: $("runs-empty"),
  summary: $("runs-summary"),
  more: $("load-more"),
  detail: $("detail"),
};

export const state = {
  token: null,
  workspaceId: null,
  filters: { status: null, subjectId: null, triggeredBy: null },
  selectedId: null,
  list: null,
  counts: null,
  live: null,
  // Bumped when the workspace or the filters change: answers to older requests are dropped.
  generation: 0,
  refresh: { timer: null, running: false, again: false, overtaking: null },
  detailTimer: null,
};

// ---- URL: the view (workspace, filters, selected run) lives in the query string -------------

export function readUrl() {
  const params = new URLSearchParams(location.search);
  const status = params.get("status");
  const trigger = params.get("trigger");
  state.filters = {
    status: STATUSES.includes(status) ? status : null,
    subjectId: params.get("subject") || null,
    triggeredBy: TRIGGERS.includes(trigger) ? trigger : null,
  };
  state.selectedId = params.get("run") || null;
  return params.get("workspace");
}

export function urlFor(changes = {}) {
  const view = {
    workspace: state.workspaceId,
    status: state.filters.status,
    subject: state.filters.subjectId,
    trigger: state.filters.triggeredBy,
    run: state.selectedId,
    ...changes,
  };
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(view)) if (value) params.set(key, value);
  return `${location.pathname}?${params}`;
}

export const hrefFor = (runId) => urlFor({ run: runId });

export function writeUrl() {
  history.replaceState(history.state, "", urlFor());
}

export function stopLive() {
  state.live?.stop();
  state.live = null;
}
