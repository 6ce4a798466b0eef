// GraphQL over HTTP against this server's /graphql, and the operations the dashboard sends.

export const RUN_FIELDS = `
  id workspaceId subjectId parentRunId status mode triggeredBy cfWorkflowId durationMs userId
  startedAt completedAt createdAt updatedAt`;

export const COUNTS = `
query DashboardCounts($workspaceId: ID!, $filter: WorkflowRunFilter) {
  workflowRunStatusCounts(workspaceId: $workspaceId, filter: $filter) { status count }
}`;

export const RUNS = `
query DashboardRuns($workspaceId: ID!, $status: [WorkflowRunStatus!], $filter: WorkflowRunFilter,
                    $first: Int, $after: String) {
  workflowRuns(workspaceId: $workspaceId, status: $status, filter: $filter, first: $first,
               after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { ${RUN_FIELDS} }
  }
}`;

// A cursor of an event that is already visible: everything not yet reflected in a snapshot
// taken after this query comes later in the stream, so subscribing after it misses nothing.
export const LATEST_CURSOR = `
query DashboardLatestCursor($workspaceId: ID!) {
  workflowRuns(workspaceId: $workspaceId, orderBy: UPDATED_AT_DESC, first: 1) {
    nodes { events { cursor } }
  }
}`;

export const RUN_DETAIL = `
query DashboardRun($id: ID!) {
  workflowRun(id: $id) {
    ${RUN_FIELDS} input output error
    parent { id subjectId status }
    events { cursor previousStatus status occurredAt }
    children(first: 50) { totalCount nodes { id subjectId status triggeredBy createdAt durationMs } }
  }
}`;

export const STATUS_CHANGED = `
subscription DashboardLive($workspaceId: ID!, $after: String) {
  workflowRunStatusChanged(workspaceId: $workspaceId, after: $after) {
    cursor runId previousStatus status occurredAt
    run { ${RUN_FIELDS} }
  }
}`;

export class ApiError extends Error {
  // kind: "unauthenticated" | "forbidden" | "network" | "server" | "expired" | "input"
  constructor(kind, message, code = null) {
    super(message);
    this.kind = kind;
    this.code = code;
  }
}

const KINDS = {
  UNAUTHENTICATED: "unauthenticated",
  FORBIDDEN: "forbidden",
  CURSOR_EXPIRED: "expired",
  BAD_USER_INPUT: "input",
};

// The ApiError for a list of GraphQL errors (HTTP body or subscription payload).
export function errorFrom(errors) {
  const first = errors?.[0] ?? {};
  const code = first.extensions?.code ?? null;
  return new ApiError(
    KINDS[code] ?? "server",
    first.message || "The server refused the request.",
    code,
  );
}

export function graphqlUrl() {
  return new URL("graphql", document.baseURI).href;
}

export async function request(token, query, variables) {
  let response;
  try {
    response = await fetch(graphqlUrl(), {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/graphql-response+json, application/json",
        Authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query, variables }),
      cache: "no-store",
    });
  } catch {
    throw new ApiError("network", "The server cannot be reached.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: judged by the status below
  }
  if (response.status === 401) {
    throw new ApiError(
      "unauthenticated",
      body?.errors?.[0]?.message || "The token was rejected.",
      "UNAUTHENTICATED",
    );
  }
  if (body?.errors?.length) throw errorFrom(body.errors);
  if (!response.ok || !body?.data) {
    throw new ApiError(
      response.status >= 500 ? "network" : "server",
      `The server answered HTTP ${response.status}.`,
    );
  }
  return body.data;
}
