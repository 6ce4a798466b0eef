// Runs graphql-http's GraphQL-over-HTTP conformance audit against a server and prints the
// results as JSON lines: {status, name, reason}.
// Usage: node audit.mjs <graphql-url> <token>
import { auditServer } from "graphql-http";

const [url, token] = process.argv.slice(2);
const fetchWithToken = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url, fetchFn: fetchWithToken });
for (const result of results) {
  console.log(JSON.stringify({ status: result.status, id: result.id, name: result.name, reason: result.reason ?? null }));
}
