/**
 * A1111's `extra-single-image` body (its upscaler, also RunPod's `api_name: "extra-single-image"`
 * and SD-on-EKS's `extra-single-image` task) to and from the canonical `upscale` job.
 */
import { z } from "@hono/zod-openapi";
import type { IntakeOptions, IntakeRequest } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import type { Base64Image } from "../../webhooks/body-slots";
import { pyFloat, pyInt } from "../coerce";

export const ExtrasSingleImageSchema = z
  .looseObject({
    image: z.string().min(1),
    /** 0: by `upscaling_resize`; 1: to `upscaling_resize_w` x `upscaling_resize_h`. */
    resize_mode: z.union([z.literal(0), z.literal(1)]).optional(),
    // Read as A1111's pydantic v1 reads them: "2" is 2.
    upscaling_resize: pyFloat().optional(),
    upscaling_resize_w: pyInt().optional(),
    upscaling_resize_h: pyInt().optional(),
    upscaler_1: z.string().optional(),
  })
  .openapi("ExtrasSingleImageRequest");
export type ExtrasSingleImage = z.infer<typeof ExtrasSingleImageSchema>;

/** Fields the canonical upscale models; the others (face restoration, a second upscaler...) go to the backend as sent. */
const MAPPED = new Set(["image", "resize_mode", "upscaling_resize", "upscaling_resize_w", "upscaling_resize_h", "upscaler_1", "upscaling_crop"]);

/** A1111's names for what a 422 about an upscale points at; `under` is the envelope around the body. */
export const extrasFields = (under = "") =>
  ({
    init_image: `${under}image`,
    scale: `${under}upscaling_resize`,
    width: `${under}upscaling_resize_w`,
    height: `${under}upscaling_resize_h`,
  }) satisfies IntakeOptions["fields"];

/** With A1111's defaults: by 2x, the upscaler "None" meaning no model (the core's plain resize). */
export function fromExtras(body: ExtrasSingleImage, image: string | Uint8Array = body.image): IntakeRequest {
  const toSize = body.resize_mode === 1;
  const upscaler = body.upscaler_1 && body.upscaler_1 !== "None" ? body.upscaler_1 : undefined;
  return {
    type: "upscale",
    init_image: image,
    scale: toSize ? undefined : (body.upscaling_resize ?? 2),
    width: toSize ? (body.upscaling_resize_w ?? 512) : undefined,
    height: toSize ? (body.upscaling_resize_h ?? 512) : undefined,
    upscaler,
    a1111_extra: Object.fromEntries(Object.entries(body).filter(([k]) => !MAPPED.has(k))),
  };
}

/** A1111's answer: `{html_info, image}`, the image as base64. */
export function toExtrasResponse(snapshot: JobSnapshot, images: Base64Image[]) {
  const out = snapshot.job.output[0];
  const upscaler = snapshot.input.spec.upscale?.upscaler ?? "Lanczos";
  return { html_info: out ? `<p>Postprocess upscale to: ${out.width}x${out.height}, upscaler: ${upscaler}</p>` : "", image: images[0] ?? "" };
}
