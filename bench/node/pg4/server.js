// PostGraphile 4 as a benchmark peer: the library in a plain node http server, production
// settings, connection-filter, on 127.0.0.1:$PORT/graphql over $DATABASE_URL (schema public).
//   NODE_ENV=production PORT=5679 DATABASE_URL=postgres://... node server.js
"use strict";

const http = require("node:http");
const { postgraphile } = require("postgraphile");
const ConnectionFilterPlugin = require("postgraphile-plugin-connection-filter");

const port = Number(process.env.PORT || 5679);
const connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  throw new Error("DATABASE_URL is not set");
}

const middleware = postgraphile(connectionString, "public", {
  appendPlugins: [ConnectionFilterPlugin],
  graphqlRoute: "/graphql",
  graphiql: false,
  enhanceGraphiql: false,
  watchPg: false,
  disableQueryLog: true,
  dynamicJson: true,
  setofFunctionsContainNulls: false,
  ignoreRBAC: false,
  extendedErrors: [],
  showErrorStack: false,
  retryOnInitFail: false,
});

const server = http.createServer(middleware);
server.on("error", (e) => {
  console.error(e);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => {
  console.log(`PostGraphile 4 listening on http://127.0.0.1:${port}/graphql`);
});

function shutdown() {
  server.close();
  middleware.release().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
