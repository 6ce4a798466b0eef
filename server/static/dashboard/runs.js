// The table's runs: a page fetched from the API, kept current by applying each event's run.
// Applying is idempotent (a run's newer updatedAt wins), so replayed events and a snapshot that
// already holds them agree.

function newer(a, b) {
  // ISO-8601 in UTC with microseconds, as the API writes them: comparable as strings.
  return a.updatedAt >= b.updatedAt;
}

// Newest first, as the API orders CREATED_AT_DESC.
function before(a, b) {
  return a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.id > b.id);
}

export class RunList {
  constructor(filters) {
    this.filters = filters;
    this.runs = [];
    this.totalCount = 0;
    this.hasNextPage = false;
    this.endCursor = null;
    this.loaded = false;
  }

  matches(run) {
    const { status, subjectId, triggeredBy } = this.filters;
    return (
      (!status || run.status === status) &&
      (!subjectId || run.subjectId === subjectId) &&
      (!triggeredBy || run.triggeredBy === triggeredBy)
    );
  }

  // A fetched connection replaces the list (or extends it, for "load more"); where the list
  // holds a newer version of a run (an event that overtook the request), that one stays.
  setPage(connection, { append = false } = {}) {
    const local = new Map(this.runs.map((run) => [run.id, run]));
    const fetched = connection.nodes.map((run) => {
      const mine = local.get(run.id);
      return mine && newer(mine, run) ? mine : run;
    });
    if (append) {
      const seen = new Set(this.runs.map((run) => run.id));
      this.runs = [...this.runs, ...fetched.filter((run) => !seen.has(run.id))];
    } else {
      this.runs = fetched;
    }
    this.totalCount = connection.totalCount;
    this.hasNextPage = connection.pageInfo.hasNextPage;
    this.endCursor = connection.pageInfo.endCursor;
    this.loaded = true;
  }

  // Applies a run as an event left it; returns what changed on screen: "added", "updated",
  // "removed" or null.
  apply(run) {
    const index = this.runs.findIndex((r) => r.id === run.id);
    if (index >= 0) {
      if (!newer(run, this.runs[index])) return null;
      if (this.matches(run)) {
        this.runs[index] = run;
        return "updated";
      }
      this.runs.splice(index, 1);
      return "removed";
    }
    if (!this.loaded || !this.matches(run)) return null;
    let at = this.runs.findIndex((r) => before(run, r));
    if (at < 0) {
      // Older than every row shown: it belongs to a page not loaded yet.
      if (this.hasNextPage) return null;
      at = this.runs.length;
    }
    this.runs.splice(at, 0, run);
    return "added";
  }
}
