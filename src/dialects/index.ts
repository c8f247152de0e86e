import { createApp } from "../app";
import { a1111 } from "./a1111/routes";
import { cerebrium } from "./cerebrium/routes";
import { registerComfyRenderers } from "./comfyui/feed";
import { comfyui } from "./comfyui/routes";
import { comfyServer } from "./comfyui/server";
import { eks } from "./eks/routes";
import { registerManifestRenderers } from "./manifests";
import { modelslab } from "./modelslab/routes";
import { runpod } from "./runpod/routes";
import { replicate } from "./replicate";
import { registerWebhookRenderers } from "./webhooks";

/**
 * The seed APIs, each a thin translation onto the canonical job. Each sub-app keeps its own
 * `onError` (Hono wraps a mounted app's handlers with it), so errors come in that API's shape.
 */
export const dialects = createApp();
dialects.route("/", a1111);
dialects.route("/", modelslab);
dialects.route("/", cerebrium);
dialects.route("/", runpod);
dialects.route("/", eks);
dialects.route("/", replicate);
dialects.route("/", comfyui);
dialects.route("/", comfyServer);

// The job object renders webhook bodies and S3 manifests through these (it never imports a dialect).
registerWebhookRenderers();
registerManifestRenderers();
registerComfyRenderers();
