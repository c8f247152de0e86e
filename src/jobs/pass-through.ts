/**
 * Pass-through fields kept beside a job (A1111's extra fields, the request a dialect echoes): the
 * large ones in R2, the rest with the job.
 */
import type { Env } from "../env";
import { passThroughKey } from "../storage/images";
import type { GenerationSpec, Workflow } from "./spec";

/**
 * Pass-through fields (masks and ControlNet images in `alwayson_scripts`, the request a dialect
 * echoes) can be megabytes, while a Durable Object value holds 2 MB: past this in all, the largest
 * of them move to R2 until the rest fits. The small ones (an endpoint, a flag, a path) stay with the
 * job, so only a rendering that shows the large ones (a finished job's answer) reads R2.
 */
const INLINE_PASS_THROUGH_BYTES = 64 * 1024;

/** A workflow's graph past this goes to R2 whole, with the pass-through fields: only its run reads it. */
const INLINE_WORKFLOW_BYTES = 256 * 1024;

type PassThrough = { a1111_extra: Record<string, unknown>; dialect_data: Record<string, unknown>; workflow?: Workflow };

export async function storePassThrough(env: Env, runId: string, spec: GenerationSpec, dialect_data: Record<string, unknown>) {
  const json = JSON.stringify({ a1111_extra: spec.a1111_extra, dialect_data });
  const graphMoves = spec.workflow !== undefined && JSON.stringify(spec.workflow).length > INLINE_WORKFLOW_BYTES;
  if (json.length <= INLINE_PASS_THROUGH_BYTES && !graphMoves) return { spec, dialect_data, key: undefined };
  const kept: PassThrough = { a1111_extra: { ...spec.a1111_extra }, dialect_data: { ...dialect_data } };
  const moved: PassThrough = { a1111_extra: {}, dialect_data: {}, workflow: graphMoves ? spec.workflow : undefined };
  // An object's own fields are moved one by one (a Replicate `input`'s image, not its prompt), so
  // what renders the running job keeps its small fields; anything else moves whole.
  const entries = (["a1111_extra", "dialect_data"] as const)
    .flatMap((part) =>
      Object.entries(kept[part]).flatMap(([name, value]): { part: typeof part; name: string; field: string | undefined; size: number }[] =>
        isPlainObject(value)
          ? Object.entries(value).map(([field, v]) => ({ part, name, field, size: JSON.stringify(v ?? null).length }))
          : [{ part, name, field: undefined, size: JSON.stringify(value ?? null).length }],
      ),
    )
    .sort((a, b) => b.size - a.size);
  let size = json.length;
  for (const e of entries) {
    if (size <= INLINE_PASS_THROUGH_BYTES) break;
    const from = kept[e.part];
    if (e.field === undefined) {
      moved[e.part][e.name] = from[e.name];
      delete from[e.name];
    } else {
      const rest = { ...(from[e.name] as Record<string, unknown>) };
      moved[e.part][e.name] = { ...(moved[e.part][e.name] as Record<string, unknown> | undefined), [e.field]: rest[e.field] };
      delete rest[e.field];
      // An object left with nothing is not kept as an empty one.
      if (Object.keys(rest).length) from[e.name] = rest;
      else delete from[e.name];
    }
    size -= e.size;
  }
  const key = passThroughKey(runId);
  await env.IMAGES.put(key, JSON.stringify(moved), { httpMetadata: { contentType: "application/json" } });
  return {
    spec: { ...spec, a1111_extra: spec.a1111_extra === undefined ? undefined : kept.a1111_extra, workflow: graphMoves ? undefined : spec.workflow },
    dialect_data: kept.dialect_data,
    key,
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
