import { describe, expect, it } from "vitest";
import { comfySampler } from "../../../../src/backends/comfy-graphs/samplers";
import objectInfo from "../../../fixtures/comfyui/object_info.json";

const [samplerChoices, schedulerChoices] = [objectInfo.KSampler.input.required.sampler_name[0], objectInfo.KSampler.input.required.scheduler[0]] as string[][];

describe("A1111 sampler names on ComfyUI", () => {
  it("maps A1111's names to ComfyUI's sampler and scheduler", () => {
    expect(comfySampler("DPM++ 2M Karras")).toEqual({ sampler_name: "dpmpp_2m", scheduler: "karras" });
    expect(comfySampler("Euler a")).toEqual({ sampler_name: "euler_ancestral", scheduler: "normal" });
    expect(comfySampler("Euler")).toEqual({ sampler_name: "euler", scheduler: "normal" });
    expect(comfySampler("DPM++ SDE Karras")).toEqual({ sampler_name: "dpmpp_sde", scheduler: "karras" });
    expect(comfySampler("DDIM")).toEqual({ sampler_name: "ddim", scheduler: "ddim_uniform" });
    expect(comfySampler("UniPC")).toEqual({ sampler_name: "uni_pc", scheduler: "normal" });
    expect(comfySampler("LMS")).toEqual({ sampler_name: "lms", scheduler: "normal" });
    expect(comfySampler("Heun")).toEqual({ sampler_name: "heun", scheduler: "normal" });
    expect(comfySampler("DPM2")).toEqual({ sampler_name: "dpm_2", scheduler: "normal" });
    expect(comfySampler("DPM++ 2M SDE")).toEqual({ sampler_name: "dpmpp_2m_sde", scheduler: "normal" });
    expect(comfySampler("DPM++ 2M SDE Exponential")).toEqual({ sampler_name: "dpmpp_2m_sde", scheduler: "exponential" });
    expect(comfySampler("dpm++ 2m  karras")).toEqual({ sampler_name: "dpmpp_2m", scheduler: "karras" });
  });

  it("runs a job that names no sampler with A1111's default, Euler a", () => {
    expect(comfySampler(undefined)).toEqual({ sampler_name: "euler_ancestral", scheduler: "normal" });
  });

  it("says so for a name ComfyUI has nothing like", () => {
    expect(comfySampler("Restart")).toBeUndefined();
    expect(comfySampler("PLMS")).toBeUndefined();
    expect(comfySampler("DDIM Karras")).toBeUndefined();
  });

  it("only ever names samplers and schedulers ComfyUI lists", () => {
    const names = ["Euler a", "Euler", "LMS", "LMS Karras", "Heun", "DPM2", "DPM2 a", "DPM2 Karras", "DPM2 a Karras", "DPM++ 2S a", "DPM++ 2S a Karras", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ SDE", "DPM++ SDE Karras", "DPM++ 2M SDE", "DPM++ 2M SDE Karras", "DPM++ 2M SDE Exponential", "DPM++ 2M SDE Heun", "DPM++ 2M SDE Heun Karras", "DPM++ 3M SDE", "DPM++ 3M SDE Karras", "DPM++ 3M SDE Exponential", "DPM fast", "DPM adaptive", "LCM", "DDPM", "DDIM", "UniPC", "Euler SGM Uniform"];
    for (const name of names) {
      const mapped = comfySampler(name);
      expect(mapped, name).toBeDefined();
      expect(samplerChoices).toContain(mapped?.sampler_name);
      expect(schedulerChoices).toContain(mapped?.scheduler);
    }
  });
});
