import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { mergeDefinitions, nodeDefinitions, serverLists, withChoices, withoutJobFiles, withStreamedSave } from "../../../../src/dialects/comfyui/info";
import { randomId } from "../../../../src/lib/crypto";

const calls = async (path: string) => Number(await (await fetch(`${inject("hangingBackendUrl")}/_calls?path=${encodeURIComponent(path)}`)).text());

/** A deployment whose one ComfyUI server answers its lists at once (`/lists-*`). */
function listingComfy() {
  const id = `lists-${randomId("c")}`;
  return {
    env: { ...env, BACKENDS: JSON.stringify([{ name: id, kind: "comfyui", url: `${inject("hangingBackendUrl")}/${id}`, types: ["workflow"] }]) },
    path: (p: string) => `/${id}${p}`,
  };
}

/** `n` readers at once, then one more. */
async function readers<T>(n: number, read: () => Promise<T>): Promise<T[]> {
  const answers = await Promise.all(Array.from({ length: n }, read));
  return [...answers, await read()];
}

describe("the node definitions shown to tenants", () => {
  const upload = `run_${"b".repeat(39)}-1-private.png`;
  const defs = {
    LoadImage: { input: { required: { image: [["example.png", upload, `sub/${upload}`], { image_upload: true }] } }, output: ["IMAGE", "MASK"] },
    LoadImageMask: { input: { required: { image: [[upload, "mask.png"], {}], channel: [["alpha", "red"]] } } },
    LoadImageOutput: { input: { required: { image: ["COMBO", { options: ["AlphaPrivate_00001_.png [output]"] }] } } },
    KSampler: { input: { required: { seed: ["INT", { min: 0 }] } } },
  };

  it("list no other job's upload among the loaders' files and no output at all; the server's own files and everything else stay", () => {
    const shown = withoutJobFiles(defs) as unknown as typeof defs;
    expect(shown.LoadImage.input.required.image).toEqual([["example.png"], { image_upload: true }]);
    expect(shown.LoadImageMask.input.required).toEqual({ image: [["mask.png"], {}], channel: [["alpha", "red"]] });
    expect(shown.LoadImageOutput.input.required.image).toEqual(["COMBO", { options: [] }]);
    expect(shown.KSampler).toEqual(defs.KSampler);
    expect(shown.LoadImage.output).toEqual(["IMAGE", "MASK"]);
  });

  it("of several servers offer every server's choices in each combo, in the first server's form; a class only one has stays as it has it", () => {
    const a = { KSampler: { input: { required: { sampler_name: [["euler", "dpmpp_2m"]], seed: ["INT", { min: 0 }] }, optional: { mode: ["COMBO", { options: ["x"] }] } } } };
    const b = { KSampler: { input: { required: { sampler_name: [["euler", "res_multistep"]], seed: ["INT", { min: 1 }] }, optional: { mode: ["COMBO", { options: ["y"] }] } } }, OnlyB: { input: {} } };
    expect(mergeDefinitions([a, b])).toEqual({
      KSampler: { input: { required: { sampler_name: [["euler", "dpmpp_2m", "res_multistep"]], seed: ["INT", { min: 0 }] }, optional: { mode: ["COMBO", { options: ["x", "y"] }] } } },
      OnlyB: { input: {} },
    });
  });

  it("offer SaveImageWebsocket wherever SaveImage runs (Easel runs it as one), as ComfyUI defines it; a server's own stays as it is", () => {
    const shown = withStreamedSave({ SaveImage: { output_node: true } });
    expect(shown.SaveImageWebsocket).toMatchObject({ input: { required: { images: ["IMAGE"] } }, output: [], output_node: true, category: "api/image" });
    const own = { SaveImage: { output_node: true }, SaveImageWebsocket: { input: { required: { images: ["IMAGE"] } }, output_node: true, description: "the server's" } };
    expect(withStreamedSave(own)).toEqual(own);
    expect(withStreamedSave({ KSampler: {} })).toEqual({ KSampler: {} });
  });

  it("offer every ComfyUI backend's checkpoints as ckpt_name's choices, in the server's own form (a list, or V3's COMBO)", () => {
    const v1 = { input: { required: { ckpt_name: [["a.safetensors"], { tooltip: "t" }] } } };
    const v3 = { input: { required: { ckpt_name: ["COMBO", { multiselect: false, options: ["a.safetensors"], tooltip: "t" }] } } };
    const choices = ["a.safetensors", "b.safetensors"];
    expect(withChoices(v1, choices)).toEqual({ input: { required: { ckpt_name: [choices, { tooltip: "t" }] } } });
    expect(withChoices(v3, choices)).toEqual({ input: { required: { ckpt_name: ["COMBO", { multiselect: false, options: choices, tooltip: "t" }] } } });
  });
});

describe("the ComfyUI servers' own lists", () => {
  it("reach a server once while kept, however many read them at once, and never for a folder it does not list", async () => {
    const d = listingComfy();
    expect(new Set((await readers(5, () => serverLists(d.env, "/models"))).map((l) => JSON.stringify(l)))).toEqual(new Set(['["checkpoints","loras"]']));
    expect((await readers(5, () => serverLists(d.env, "/models/loras"))).every((l) => l?.[0] === "lora.safetensors")).toBe(true);
    expect((await readers(5, () => serverLists(d.env, "/embeddings"))).every((l) => l?.[0] === "embedding")).toBe(true);
    expect(await readers(5, () => serverLists(d.env, "/models/made-up"))).toEqual(Array(6).fill(undefined));
    expect(await Promise.all(["/models", "/models/loras", "/embeddings", "/models/made-up"].map((p) => calls(d.path(p))))).toEqual([1, 1, 1, 0]);
  });

  it("ask a server for its node definitions once for readers at once", async () => {
    const d = listingComfy();
    const answers = await readers(5, () => nodeDefinitions(d.env));
    expect(answers.every((a) => a.complete && Object.keys(a.defs).includes("KSampler"))).toBe(true);
    expect(await calls(d.path("/object_info"))).toBe(1);
  });
});
