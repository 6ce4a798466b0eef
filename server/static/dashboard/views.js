// Rendering: plain DOM, updated in place so that focus and selection survive live changes.

import {
  STATUSES,
  absoluteTime,
  count,
  duration,
  json,
  label,
  relativeTime,
  shortId,
} from "./format.js";

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function statusBadge(status) {
  return h(
    "span",
    { class: `badge status-${status.toLowerCase()}`, dataset: { status } },
    label(status),
  );
}

export function timeEl(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h(
    "time",
    { datetime: iso, title: absoluteTime(iso), dataset: { relative: "" } },
    relativeTime(iso),
  );
}

// Relative times age: refresh their text now and then.
export function refreshTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll("time[data-relative]")) {
    el.textContent = relativeTime(el.getAttribute("datetime"), now);
  }
}

// ---- counts ---------------------------------------------------------------------------------

// The cards are buttons (data-status); the page listens for their clicks.
export function renderCounts(list, counts, activeStatus) {
  if (!list.childElementCount) {
    for (const status of STATUSES) {
      const button = h(
        "button",
        {
          type: "button",
          class: `count-card status-${status.toLowerCase()}`,
          dataset: { status },
          "aria-pressed": "false",
        },
        h(
          "span",
          { class: "count-label" },
          h("span", { class: "dot", "aria-hidden": "true" }),
          label(status),
        ),
        h("span", { class: "count-value", dataset: { testid: `count-${status}` } }, "–"),
      );
      list.append(h("li", {}, button));
    }
  }
  for (const button of list.querySelectorAll("button[data-status]")) {
    const status = button.dataset.status;
    const value = button.querySelector(".count-value");
    const text = counts ? count(counts.get(status) ?? 0) : "–";
    if (value.textContent !== text) {
      // A count that changes flashes; the first one to arrive does not.
      if (value.textContent !== "–") flash(button);
      value.textContent = text;
    }
    button.setAttribute("aria-pressed", String(status === activeStatus));
    button.title =
      status === activeStatus
        ? "Show every status"
        : `Show only ${label(status).toLowerCase()} runs`;
  }
}

function flash(el) {
  el.classList.remove("changed");
  // Restart the animation: reading a layout property flushes the class removal.
  void el.offsetWidth;
  el.classList.add("changed");
}

// ---- runs table -----------------------------------------------------------------------------

function rowCells(run, href) {
  return [
    h("td", {}, statusBadge(run.status)),
    h(
      "td",
      {},
      h(
        "a",
        { class: "run-link mono", href, title: run.id, dataset: { runId: run.id } },
        shortId(run.id),
      ),
      run.parentRunId
        ? h("span", { class: "tag", title: `Child of ${run.parentRunId}` }, "child")
        : null,
    ),
    h("td", { class: "mono subject" }, run.subjectId),
    h("td", {}, label(run.triggeredBy)),
    h("td", {}, timeEl(run.createdAt)),
    h("td", { class: "num" }, duration(run.durationMs)),
  ];
}

export function renderRows(tbody, runs, { selectedId, hrefFor, changed }) {
  const existing = new Map([...tbody.rows].map((row) => [row.dataset.runId, row]));
  let previous = null;
  for (const run of runs) {
    let row = existing.get(run.id);
    existing.delete(run.id);
    const version = `${run.updatedAt}|${run.status}`;
    if (!row) {
      row = h("tr", { dataset: { runId: run.id, version } }, rowCells(run, hrefFor(run.id)));
      if (changed) flash(row);
    } else if (row.dataset.version !== version) {
      row.dataset.version = version;
      row.replaceChildren(...rowCells(run, hrefFor(run.id)));
      flash(row);
    }
    row.dataset.status = run.status;
    if (run.id === selectedId) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
    const expected = previous ? previous.nextSibling : tbody.firstChild;
    if (expected !== row) tbody.insertBefore(row, expected);
    previous = row;
  }
  for (const row of existing.values()) row.remove();
}

// ---- one run --------------------------------------------------------------------------------

function fact(term, ...value) {
  return [h("dt", {}, term), h("dd", {}, ...value)];
}

function mono(text) {
  return text == null ? h("span", { class: "muted" }, "—") : h("span", { class: "mono" }, text);
}

export function renderDetail(container, run, { hrefFor, onClose }) {
  const close = h(
    "button",
    { type: "button", class: "icon-button", "aria-label": "Close run details", onclick: onClose },
    "×",
  );
  if (!run) {
    container.replaceChildren(
      h("div", { class: "detail-head" }, h("h2", { id: "detail-title" }, "Run not found"), close),
      h(
        "p",
        { class: "muted" },
        "No run with this id exists in this workspace, or this token may not see it.",
      ),
    );
    return;
  }
  const runLink = (id, text) =>
    h("a", { class: "run-link mono", href: hrefFor(id), dataset: { runId: id } }, text ?? id);
  const events = run.events.map((event) =>
    h(
      "li",
      { dataset: { status: event.status } },
      h("span", { class: `marker status-${event.status.toLowerCase()}`, "aria-hidden": "true" }),
      h(
        "div",
        {},
        statusBadge(event.status),
        event.previousStatus
          ? h("span", { class: "muted" }, ` from ${label(event.previousStatus)}`)
          : h("span", { class: "muted" }, " created"),
        h(
          "div",
          { class: "when" },
          timeEl(event.occurredAt),
          " · ",
          absoluteTime(event.occurredAt),
        ),
      ),
    ),
  );
  const children = run.children.nodes;
  const content = [
    h(
      "div",
      { class: "detail-head" },
      h(
        "div",
        {},
        h("p", { class: "eyebrow" }, "Run"),
        h("h2", { id: "detail-title", class: "mono", tabindex: "-1" }, run.id),
      ),
      close,
    ),
    h(
      "p",
      { class: "detail-status" },
      statusBadge(run.status),
      h("span", { class: "mono" }, run.subjectId),
    ),
    h(
      "dl",
      { class: "facts" },
      fact("Triggered by", label(run.triggeredBy)),
      fact("Mode", label(run.mode)),
      fact("User", mono(run.userId)),
      fact(
        "Parent run",
        run.parent ? runLink(run.parent.id) : h("span", { class: "muted" }, "None (root run)"),
      ),
      fact("Created", timeEl(run.createdAt)),
      fact("Started", timeEl(run.startedAt)),
      fact("Completed", timeEl(run.completedAt)),
      fact("Duration", duration(run.durationMs)),
      fact("Workflow instance", mono(run.cfWorkflowId)),
      fact("Updated", timeEl(run.updatedAt)),
    ),
    run.error ? [h("h3", {}, "Error"), h("pre", { class: "code error-text" }, run.error)] : null,
    h("h3", {}, "Timeline ", h("span", { class: "muted" }, `(${run.events.length})`)),
    h("ol", { class: "timeline", "aria-label": "Status history, oldest first" }, events),
    h("h3", {}, "Children ", h("span", { class: "muted" }, `(${count(run.children.totalCount)})`)),
    children.length
      ? h(
          "ul",
          { class: "children" },
          children.map((child) =>
            h(
              "li",
              { dataset: { runId: child.id } },
              statusBadge(child.status),
              runLink(child.id, shortId(child.id)),
              h("span", { class: "mono subject" }, child.subjectId),
              h("span", { class: "muted" }, duration(child.durationMs)),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No child runs."),
    h("h3", {}, "Input"),
    h("pre", { class: "code" }, json(run.input)),
    h("h3", {}, "Output"),
    h("pre", { class: "code" }, json(run.output)),
  ];
  container.replaceChildren(...content.flat().filter(Boolean));
}
