// How values read on screen: status labels, times, durations, ids.

export const STATUSES = [
  "PENDING",
  "RUNNING",
  "WAITING",
  "PAUSED",
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
];
export const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);
export const TRIGGERS = ["WORKFLOW", "AGENT", "SWARM", "USER", "EVENT"];

const LABELS = {
  PENDING: "Pending",
  RUNNING: "Running",
  WAITING: "Waiting",
  PAUSED: "Paused",
  COMPLETED: "Completed",
  FAILED: "Failed",
  CANCELLED: "Cancelled",
  TIMED_OUT: "Timed out",
  WORKFLOW: "Workflow",
  AGENT: "Agent",
  SWARM: "Swarm",
  USER: "User",
  EVENT: "Event",
  SYNC: "Sync",
  ASYNC: "Async",
};

export function label(value) {
  return value == null ? "—" : (LABELS[value] ?? value);
}

const number = new Intl.NumberFormat();
export function count(n) {
  return number.format(n);
}

const absolute = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function absoluteTime(iso) {
  return iso ? absolute.format(new Date(iso)) : "—";
}

export function relativeTime(iso, now = Date.now()) {
  if (!iso) return "—";
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 5) return "just now";
  if (abs < 60) return relative.format(seconds, "second");
  if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
  return relative.format(Math.round(seconds / 86400), "day");
}

export function duration(ms) {
  if (ms == null) return "—";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

// Run ids are long; the table shows their tail, the detail shows them whole.
export function shortId(id) {
  const prefix = /^[a-z]+_/.exec(id)?.[0] ?? "";
  return id.length - prefix.length > 12 ? `${prefix}…${id.slice(-8)}` : id;
}

export function json(value) {
  return value == null ? "null" : JSON.stringify(value, null, 2);
}
