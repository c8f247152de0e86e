/** The ComfyUI front's app: its key (Bearer, basic auth's password, or `?token=` as ComfyUI-Login takes it) and its error shape. */
import type { Context } from "hono";
import { createApp, errorsAs } from "../../app";
import { tenantAuth } from "../../middleware/auth";
import { basicOrBearerKey } from "../keys";
import { comfyErrorOf } from "./translate";

const comfyKey = (c: Context): string | undefined => basicOrBearerKey(c) ?? (c.req.query("token") || undefined);

export const comfyAuth = tenantAuth({ key: comfyKey });

/** Every route of the front is served at the root and under `/api/`, as ComfyUI serves them. */
export const BASES = ["", "/api"] as const;

export const comfyApp = () => {
  const app = createApp();
  app.onError(errorsAs(comfyErrorOf));
  return app;
};
