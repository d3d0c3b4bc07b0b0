// graphql-http's own GraphQL-over-HTTP audit against a running Podrun: node graphql_http_audit.mjs <url of /graphql>
// Prints one JSON array of {id, name, status, reason} (status: ok | warn | error).
// The package comes from frontend/node_modules (frontend/package.json; `./taskw setup:web` installs it).
import { createRequire } from "node:module";

const require = createRequire(new URL("../../../frontend/package.json", import.meta.url));
const { auditServer } = require("graphql-http");

const url = process.argv[2];
const results = await auditServer({ url });
const rows = results.map((result) => ({
  id: result.id,
  name: result.name,
  status: result.status,
  reason: result.status === "ok" ? null : result.reason,
}));
process.stdout.write(JSON.stringify(rows) + "\n");
