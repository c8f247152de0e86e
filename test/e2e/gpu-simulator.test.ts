/** The GPU simulator itself: the wire formats and faults the other end-to-end tests rely on. */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { decodePng } from "../../gpu-simulator/upscale";
import { pngSize } from "./support/client";
import { startSimulatorProcess } from "./support/processes";

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 10 }), SIM_RUNPOD_API_KEY: "rp" } });
});
afterAll(async () => {
  await sim?.stop();
});

type A1111Answer = { images: string[]; info: string };
const txt2img = async (body: Record<string, unknown>, path = "/sdapi/v1/txt2img") =>
  (await fetch(sim.url + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json() as Promise<A1111Answer>;

describe("gpu-simulator", () => {
  it("makes real PNGs of the asked size, one per batch item, seeds counting up, the same bytes for the same inputs", async () => {
    const a = await txt2img({ prompt: "a cat", seed: 7, width: 64, height: 72, batch_size: 2 });
    expect(a.images.map((i) => pngSize(new Uint8Array(Buffer.from(i, "base64"))))).toEqual([
      { width: 64, height: 72 },
      { width: 64, height: 72 },
    ]);
    expect((JSON.parse(a.info) as { all_seeds: number[] }).all_seeds).toEqual([7, 8]);
    const again = await txt2img({ prompt: "a cat", seed: 7, width: 64, height: 72, batch_size: 2 });
    expect(again.images).toEqual(a.images);
    expect((await txt2img({ prompt: "a dog", seed: 7, width: 64, height: 72 })).images[0]).not.toBe(a.images[0]);
  });

  it("lets the init image change an img2img result", async () => {
    const red = Buffer.from(encodePng(8, 8, () => [255, 0, 0])).toString("base64");
    const blue = Buffer.from(encodePng(8, 8, () => [0, 0, 255])).toString("base64");
    const one = await txt2img({ prompt: "x", seed: 1, width: 64, height: 64, init_images: [red] }, "/sdapi/v1/img2img");
    const two = await txt2img({ prompt: "x", seed: 1, width: 64, height: 64, init_images: [blue] }, "/sdapi/v1/img2img");
    expect(one.images[0]).not.toBe(two.images[0]);
  });

  it("returns partial images on interrupt, A1111's error envelope on an injected OOM, and counts concurrency", async () => {
    await sim.config({ msPerImage: 400 });
    const slow = txt2img({ prompt: "slow", width: 64, height: 64, batch_size: 4 });
    await new Promise((r) => setTimeout(r, 500));
    await fetch(`${sim.url}/sdapi/v1/interrupt`, { method: "POST" });
    expect((await slow).images.length).toBeLessThan(4);
    await sim.config({ msPerImage: 10, oomRate: 1 });
    const oom = await fetch(`${sim.url}/sdapi/v1/txt2img`, { method: "POST", body: JSON.stringify({ prompt: "x" }) });
    expect(oom.status).toBe(500);
    expect(await oom.json()).toMatchObject({ error: "OutOfMemoryError", errors: expect.stringContaining("CUDA out of memory") });
    await sim.config({ oomRate: 0 });
    expect((await sim.stats()).maxConcurrent).toBeGreaterThanOrEqual(1);
  });

  it("speaks RunPod: auth, /run then /status with the A1111 answer as output", async () => {
    expect((await fetch(`${sim.url}/v2/ep/run`, { method: "POST", body: "{}" })).status).toBe(401);
    const run = (await (await fetch(`${sim.url}/v2/ep/run`, { method: "POST", headers: { authorization: "Bearer rp" }, body: JSON.stringify({ input: { api_name: "txt2img", prompt: "x", width: 64, height: 64 } }) })).json()) as { id: string; status: string };
    expect(run.status).toBe("IN_QUEUE");
    let status = "";
    for (let i = 0; i < 50 && status !== "COMPLETED"; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = ((await (await fetch(`${sim.url}/v2/ep/status/${run.id}`, { headers: { authorization: "Bearer rp" } })).json()) as { status: string }).status;
    }
    expect(status).toBe("COMPLETED");
  });

  it("keeps a RunPod job IN_PROGRESS at /status until its webhook is answered, under statusAfterWebhook", async () => {
    const held: ServerResponse[] = [];
    let arrived = () => {};
    const delivered = new Promise<void>((r) => (arrived = r));
    const receiver = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        held.push(res);
        arrived();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const auth = { authorization: "Bearer rp" };
    const statusOf = async (id: string) => (await (await fetch(`${sim.url}/v2/ep/status/${id}`, { headers: auth })).json()) as { status: string; output?: unknown };
    await sim.config({ runpod: { statusAfterWebhook: true } });
    try {
      const webhook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const run = (await (await fetch(`${sim.url}/v2/ep/run`, { method: "POST", headers: auth, body: JSON.stringify({ input: { api_name: "txt2img", prompt: "x", width: 64, height: 64 }, webhook }) })).json()) as { id: string };
      await delivered;
      const during = await statusOf(run.id);
      expect(during.status).toBe("IN_PROGRESS");
      expect(during.output).toBeUndefined();
      for (const res of held) res.writeHead(200).end();
      let after = await statusOf(run.id);
      for (let i = 0; i < 50 && after.status !== "COMPLETED"; i++) {
        await new Promise((r) => setTimeout(r, 20));
        after = await statusOf(run.id);
      }
      expect(after.status).toBe("COMPLETED");
      expect(after.output).toBeDefined();
    } finally {
      await sim.config({ runpod: { statusAfterWebhook: false } });
      for (const res of held) if (!res.writableEnded) res.end();
      receiver.closeAllConnections();
      await new Promise((r) => receiver.close(r));
    }
  });

  it("upscales for real through extra-single-image: by a factor or to a size, the pixels of the input enlarged", async () => {
    const quad = Buffer.from(encodePng(2, 2, (x, y) => (x === 0 && y === 0 ? [255, 0, 0] : [0, 0, 255])));
    const post = async (body: Record<string, unknown>) =>
      (await (await fetch(`${sim.url}/sdapi/v1/extra-single-image`, { method: "POST", body: JSON.stringify(body) })).json()) as { html_info: string; image: string };
    const byTwo = await post({ image: quad.toString("base64"), resize_mode: 0, upscaling_resize: 2, upscaler_1: "R-ESRGAN 4x+" });
    const big = decodePng(Buffer.from(byTwo.image, "base64"));
    expect([big?.width, big?.height]).toEqual([4, 4]);
    expect(big?.pixel(1, 1)).toEqual([255, 0, 0]);
    expect(big?.pixel(2, 2)).toEqual([0, 0, 255]);
    expect(byTwo.html_info).toContain("R-ESRGAN 4x+");
    const toSize = await post({ image: quad.toString("base64"), resize_mode: 1, upscaling_resize_w: 64, upscaling_resize_h: 32 });
    expect(pngSize(new Uint8Array(Buffer.from(toSize.image, "base64")))).toEqual({ width: 64, height: 32 });
  });
});
