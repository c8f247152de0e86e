/**
 * `npm run client:generate`: starts the gateway (`wrangler dev`, no backends needed), reads its
 * /openapi.json and writes client/openapi.d.ts. Run it after changing a route's schema; the
 * client test fails while the committed file is out of date.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway } from "../test/e2e/support/processes";
import { CLIENT_TYPES_PATH, renderClientTypes } from "./client-types";

const dir = mkdtempSync(join(tmpdir(), "easel-openapi-"));
const gw = await startGateway({ persistDir: dir, vars: { TENANTS: "{}", BACKENDS: "[]" } });
try {
  const res = await fetch(`${gw.url}/openapi.json`);
  if (!res.ok) throw new Error(`/openapi.json answered ${res.status}`);
  writeFileSync(CLIENT_TYPES_PATH, await renderClientTypes(await res.text()));
  console.log(`wrote ${CLIENT_TYPES_PATH.pathname}`);
} finally {
  await gw.stop();
  rmSync(dir, { recursive: true, force: true });
}
