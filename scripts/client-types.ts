/** The typed client's types, generated from the gateway's own /openapi.json with openapi-typescript. */
import openapiTS, { astToString } from "openapi-typescript";

export const CLIENT_TYPES_PATH = new URL("../client/openapi.d.ts", import.meta.url);

const BANNER = "// Generated from the gateway's /openapi.json by `npm run client:generate` (openapi-typescript). Do not edit.\n\n";

export async function renderClientTypes(openapiJson: string): Promise<string> {
  return BANNER + astToString(await openapiTS(openapiJson));
}
