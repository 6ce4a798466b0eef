// Subscribes with the graphql-ws client library (graphql-transport-ws) and prints each event
// as one JSON line; exits 0 after `count` events, 1 on an error, 2 on a close.
// Usage: node subscribe.mjs <ws-url> <token> <workspaceId> <count> [after]
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, workspaceId, count, after] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: { closed: (event) => { if (event.code !== 1000) { console.error(`closed ${event.code} ${event.reason}`); process.exit(2); } } },
});

const query = `subscription($ws: ID!, $after: String) {
  workflowRunStatusChanged(workspaceId: $ws, after: $after) {
    cursor runId previousStatus status run { id status }
  }
}`;

let received = 0;
const subscription = client.iterate({ query, variables: { ws: workspaceId, after: after ?? null } });
try {
  for await (const result of subscription) {
    if (result.errors) {
      console.error(JSON.stringify(result.errors));
      process.exit(1);
    }
    console.log(JSON.stringify(result.data.workflowRunStatusChanged));
    received += 1;
    if (received >= Number(count)) break;
  }
} catch (error) {
  console.error(JSON.stringify(error));
  process.exit(1);
}
await client.dispose();
process.exit(0);
