/** Where each seed API carries its API key, read for `tenantAuth({ key })`. */
import type { Context } from "hono";
import { EaselError } from "../errors";
import { bearerKey } from "../middleware/auth";

/** HTTP basic auth with the API key as the password, any user name (A1111 behind `--api-auth`); else Bearer. */
export function basicOrBearerKey(c: Context): string | undefined {
  const m = c.req.header("authorization")?.match(/^Basic\s+(\S+)\s*$/i);
  if (!m?.[1]) return bearerKey(c);
  try {
    const decoded = atob(m[1]);
    return decoded.slice(decoded.indexOf(":") + 1) || undefined;
  } catch {
    return undefined;
  }
}

/** `Authorization: <key>` or `Authorization: Bearer <key>` (Cerebrium, RunPod). */
export function rawOrBearerKey(c: Context): string | undefined {
  const h = c.req.header("authorization")?.trim();
  return h ? h.replace(/^Bearer\s+/i, "") : undefined;
}

/** `x-api-key` as SD-on-EKS's API Gateway takes it; else Bearer. */
export const apiKeyOrBearer = (c: Context): string | undefined => c.req.header("x-api-key") ?? bearerKey(c);

/** `key` in the JSON body (ModelsLab); the body stays readable afterwards, as Hono caches it. */
export async function bodyKey(c: Context): Promise<string | undefined> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new EaselError(400, "malformed_json", "the request body is not valid JSON");
  }
  const key = body && typeof body === "object" && "key" in body ? body.key : undefined;
  return typeof key === "string" ? key : undefined;
}

/** `Authorization: Bearer <key>` or `Token <key>`, the form Replicate's clients sent before 2024 (Replicate). */
export function bearerOrTokenKey(c: Context): string | undefined {
  const m = c.req.header("authorization")?.match(/^(?:Bearer|Token)\s+(.+)$/i);
  return m?.[1]?.trim();
}
