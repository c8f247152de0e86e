import { createRoute, z } from "@hono/zod-openapi";
import { createApp } from "../app";
import { listModels } from "../backends/catalog";
import { tenantAuth } from "../middleware/auth";

const ModelSchema = z.object({ id: z.string(), title: z.string(), hash: z.string().nullable(), backends: z.array(z.string()) });
const ModelListSchema = z.object({ data: z.array(ModelSchema) }).openapi("ModelList");

export const models = createApp();
models.use("/v1/models", tenantAuth());
models.openapi(
  createRoute({
    method: "get",
    path: "/v1/models",
    summary: "Models across all backends",
    responses: { 200: { content: { "application/json": { schema: ModelListSchema } }, description: "The models and which backends serve them" } },
  }),
  async (c) => {
    const list = await listModels(c.env);
    return c.json({ data: list.map(({ model, backends }) => ({ id: model.model_name, title: model.title, hash: model.hash, backends })) }, 200);
  },
);
