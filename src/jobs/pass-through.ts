/**
 * Pass-through fields kept beside a job (A1111's extra fields, the request a dialect echoes): the
 * large ones in R2, the rest with the job.
 */
import type { Env } from "../env";
import { passThroughKey } from "../storage/images";
import type { GenerationSpec, Workflow } from "./spec";
import { isObject } from "./workflow-graph";

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

type Part = "a1111_extra" | "dialect_data";

/** A field that may move: a top-level entry, or one field of a top-level object; `size` is what its `"name":value,` weighs. */
type Movable = { part: Part; name: string; field: string | undefined; size: number };

const weight = (name: string, value: unknown): number => JSON.stringify(name).length + JSON.stringify(value ?? null).length + 2;

export async function storePassThrough(env: Env, runId: string, spec: GenerationSpec, dialect_data: Record<string, unknown>) {
  const given: Record<Part, Record<string, unknown>> = { a1111_extra: spec.a1111_extra ?? {}, dialect_data };
  const json = JSON.stringify({ a1111_extra: spec.a1111_extra, dialect_data });
  const graphMoves = spec.workflow !== undefined && JSON.stringify(spec.workflow).length > INLINE_WORKFLOW_BYTES;
  if (json.length <= INLINE_PASS_THROUGH_BYTES && !graphMoves) return { spec, dialect_data, key: undefined };
  // An object's own fields are moved one by one (a Replicate `input`'s image, not its prompt), so
  // what renders the running job keeps its small fields; anything else moves whole. The largest go
  // first until the rest fits; then each object is split in one pass (linear in its fields).
  const entries = (["a1111_extra", "dialect_data"] as const)
    .flatMap((part) =>
      Object.entries(given[part]).flatMap(([name, value]): Movable[] =>
        isObject(value) ? Object.entries(value).map(([field, v]) => ({ part, name, field, size: weight(field, v) })) : [{ part, name, field: undefined, size: weight(name, value) }],
      ),
    )
    .sort((a, b) => b.size - a.size);
  const moving = new Map<string, Set<string> | "whole">();
  const at = (part: Part, name: string) => `${part}\u0000${name}`;
  let size = json.length;
  for (const e of entries) {
    if (size <= INLINE_PASS_THROUGH_BYTES) break;
    const k = at(e.part, e.name);
    if (e.field === undefined) moving.set(k, "whole");
    else {
      const fields = moving.get(k);
      if (fields instanceof Set) fields.add(e.field);
      else moving.set(k, new Set([e.field]));
    }
    size -= e.size;
  }
  const kept: PassThrough = { a1111_extra: {}, dialect_data: {} };
  const moved: PassThrough = { a1111_extra: {}, dialect_data: {}, workflow: graphMoves ? spec.workflow : undefined };
  for (const part of ["a1111_extra", "dialect_data"] as const) {
    for (const [name, value] of Object.entries(given[part])) {
      const plan = moving.get(at(part, name));
      if (plan === undefined) kept[part][name] = value;
      else if (plan === "whole" || !isObject(value)) moved[part][name] = value;
      else {
        const keep: Record<string, unknown> = {};
        const move: Record<string, unknown> = {};
        for (const [field, v] of Object.entries(value)) (plan.has(field) ? move : keep)[field] = v;
        moved[part][name] = move;
        // An object left with nothing is not kept as an empty one.
        if (Object.keys(keep).length) kept[part][name] = keep;
      }
    }
  }
  const key = passThroughKey(runId);
  await env.IMAGES.put(key, JSON.stringify(moved), { httpMetadata: { contentType: "application/json" } });
  return {
    spec: { ...spec, a1111_extra: spec.a1111_extra === undefined ? undefined : kept.a1111_extra, workflow: graphMoves ? undefined : spec.workflow },
    dialect_data: kept.dialect_data,
    key,
  };
}

/** What was kept and what was moved, together again: an object split field by field is joined. */
export function joinPassThrough(kept: Record<string, unknown> = {}, moved: Record<string, unknown> = {}): Record<string, unknown> {
  const out = { ...kept };
  for (const [name, value] of Object.entries(moved)) {
    const here = out[name];
    out[name] = isObject(here) && isObject(value) ? { ...here, ...value } : value;
  }
  return out;
}
