import { createCipheriv, createHash } from "node:crypto";
import { encodePng } from "./png";

export interface GenerateRequest {
  prompt: string;
  seed: number;
  width: number;
  height: number;
  count: number;
  /** Bytes of the init image for img2img: they change the picture. */
  init?: Buffer;
  /** Noise instead of a gradient: a PNG as large as a real photo-like one of that size (~3 bytes a pixel). */
  incompressible?: boolean;
  /** Image n's infotext, written as its `parameters` text chunk as A1111 does. */
  infotext?: (n: number) => string;
}

/** Deterministic noise from a digest: AES-CTR over zeros, keyed by it. */
function noise(digest: Buffer, length: number): Buffer {
  const cipher = createCipheriv("aes-128-ctr", digest.subarray(0, 16), digest.subarray(16, 32));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

/**
 * Deterministic stand-in for a diffusion model: the same prompt, seed and init image always
 * give the same bytes; image n uses seed + n, as A1111 does for a batch.
 */
export function generateImages(req: GenerateRequest): Buffer[] {
  const initHash = req.init ? createHash("sha256").update(req.init).digest("hex") : "";
  return Array.from({ length: req.count }, (_, i) => {
    const h = createHash("sha256").update(`${req.prompt}\n${req.seed + i}\n${initHash}`).digest();
    const text: Record<string, string> = req.infotext ? { parameters: req.infotext(i) } : {};
    if (req.incompressible) {
      const bytes = noise(h, req.width * req.height * 3);
      return Buffer.from(encodePng(req.width, req.height, (x, y) => {
        const at = (y * req.width + x) * 3;
        return [bytes[at] ?? 0, bytes[at + 1] ?? 0, bytes[at + 2] ?? 0];
      }, text));
    }
    const [r0 = 0, g0 = 0, b0 = 0, r1 = 0, g1 = 0, b1 = 0] = h;
    const png = encodePng(req.width, req.height, (x, y) => {
      const t = (x + y) / Math.max(1, req.width + req.height - 2);
      return [Math.round(r0 + (r1 - r0) * t) & 255, Math.round(g0 + (g1 - g0) * t) & 255, Math.round(b0 + (b1 - b0) * t) & 255];
    }, text);
    return Buffer.from(png);
  });
}
