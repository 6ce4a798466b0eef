// Fetching what the page shows: counts and runs (again after changes), more runs, one run's
// detail; and rendering them.

import { COUNTS, LATEST_CURSOR, RUN_DETAIL, RUNS, request } from "./api.js";
import { clearAlert, reportError } from "./feedback.js";
import { count } from "./format.js";
import { hrefFor, state, ui, writeUrl } from "./page.js";
import { renderCounts, renderDetail, renderRows } from "./views.js";

const PAGE_SIZE = 50;
const REFRESH_DELAY_MS = 150;

function filterInput() {
  const { subjectId, triggeredBy } = state.filters;
  const filter = {};
  if (subjectId) filter.subjectId = subjectId;
  if (triggeredBy) filter.triggeredBy = [triggeredBy];
  return Object.keys(filter).length ? filter : null;
}

export function renderList({ changed = false } = {}) {
  const list = state.list;
  renderRows(ui.rows, list.runs, { selectedId: state.selectedId, hrefFor, changed });
  ui.empty.hidden = !list.loaded || list.runs.length > 0;
  ui.more.hidden = !list.hasNextPage;
  ui.summary.textContent = list.loaded
    ? `Showing ${count(list.runs.length)} of ${count(list.totalCount)} ${list.totalCount === 1 ? "run" : "runs"}`
    : "Loading…";
}

export function renderAllCounts() {
  renderCounts(ui.counts, state.counts, state.filters.status);
  const filtered = state.filters.subjectId || state.filters.triggeredBy;
  ui.countsNote.textContent = filtered
    ? "Counts follow the subject and trigger filters."
    : "All runs of the workspace.";
}

// Counts and the current page, fetched again; events that arrive meanwhile are applied on top.
async function refresh() {
  const generation = state.generation;
  const overtaking = [];
  state.refresh.overtaking = overtaking;
  const variables = { workspaceId: state.workspaceId, filter: filterInput() };
  const first = Math.min(500, Math.max(PAGE_SIZE, state.list.runs.length));
  try {
    const [counted, listed] = await Promise.all([
      request(state.token, COUNTS, variables),
      request(state.token, RUNS, {
        ...variables,
        status: state.filters.status ? [state.filters.status] : null,
        first,
      }),
    ]);
    if (generation !== state.generation) return;
    state.counts = new Map(counted.workflowRunStatusCounts.map((c) => [c.status, c.count]));
    state.list.setPage(listed.workflowRuns);
    for (const run of overtaking) state.list.apply(run);
    renderAllCounts();
    renderList();
    clearAlert("offline");
  } finally {
    if (state.refresh.overtaking === overtaking) state.refresh.overtaking = null;
  }
}

// At most one refresh in flight, and one more after it when something changed meanwhile.
export function scheduleRefresh(delay = REFRESH_DELAY_MS) {
  const r = state.refresh;
  if (r.running) {
    r.again = true;
    return;
  }
  if (r.timer) return;
  r.timer = setTimeout(async () => {
    r.timer = null;
    r.running = true;
    try {
      await refresh();
    } catch (error) {
      if (reportError(error)) return;
    } finally {
      r.running = false;
    }
    if (r.again) {
      r.again = false;
      scheduleRefresh();
    }
  }, delay);
}

export async function loadMore() {
  const generation = state.generation;
  ui.more.disabled = true;
  try {
    const data = await request(state.token, RUNS, {
      workspaceId: state.workspaceId,
      status: state.filters.status ? [state.filters.status] : null,
      filter: filterInput(),
      first: PAGE_SIZE,
      after: state.list.endCursor,
    });
    if (generation === state.generation) {
      state.list.setPage(data.workflowRuns, { append: true });
      renderList();
    }
  } catch (error) {
    reportError(error);
  } finally {
    ui.more.disabled = false;
  }
}

async function loadDetail() {
  const id = state.selectedId;
  if (!id) return;
  try {
    const data = await request(state.token, RUN_DETAIL, { id });
    if (id !== state.selectedId) return;
    ui.detail.hidden = false;
    renderDetail(ui.detail, data.workflowRun, { hrefFor, onClose: () => select(null) });
  } catch (error) {
    reportError(error);
  }
}

export function scheduleDetail() {
  if (state.detailTimer) return;
  state.detailTimer = setTimeout(() => {
    state.detailTimer = null;
    loadDetail();
  }, REFRESH_DELAY_MS);
}

export function select(runId, { focus = false } = {}) {
  state.selectedId = runId;
  writeUrl();
  renderList();
  if (!runId) {
    ui.detail.hidden = true;
    ui.detail.replaceChildren();
    return;
  }
  loadDetail().then(() => {
    if (focus) ui.detail.querySelector("h2")?.focus();
  });
}

// The snapshot and the stream meet without a gap: take a cursor of an already visible event
// first, then the snapshot, then subscribe after that cursor (events replayed twice are applied
// idempotently).
export async function snapshot() {
  const probe = await request(state.token, LATEST_CURSOR, { workspaceId: state.workspaceId });
  const events = probe.workflowRuns.nodes[0]?.events ?? [];
  const cursor = events.length ? events[events.length - 1].cursor : null;
  await refresh();
  return cursor;
}
