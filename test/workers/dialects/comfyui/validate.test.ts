import { describe, expect, it } from "vitest";
import { promptProblem, type NodeDefs } from "../../../../src/dialects/comfyui/validate";
import objectInfo from "../../../fixtures/comfyui/object_info.json";
import example from "../../../../examples/comfyui-txt2img.json";

const defs = objectInfo as unknown as NodeDefs;
type Graph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;
const graph = (edit: (g: Graph) => void = () => undefined): Graph => {
  const g = structuredClone(example) as Graph;
  edit(g);
  return g;
};

describe("a prompt checked as ComfyUI's /prompt checks it, over the backends' node definitions", () => {
  it("lets a whole graph through", () => {
    expect(promptProblem(defs, graph())).toBeUndefined();
  });

  it("names a missing required input under its node, with the outputs that depend on it", () => {
    const problem = promptProblem(defs, graph((g) => delete g["3"]?.inputs.steps));
    expect(problem?.error).toMatchObject({ type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation" });
    expect(problem?.node_errors).toEqual({
      "3": { errors: [{ type: "required_input_missing", message: "Required input is missing", details: "steps", extra_info: { input_name: "steps" } }], dependent_outputs: ["9"], class_type: "KSampler" },
    });
  });

  it("refuses a number widget out of its bounds or not a number, and a link of the wrong type", () => {
    const steps = promptProblem(defs, graph((g) => ((g["3"] as Graph[string]).inputs.steps = 0)));
    expect(steps?.node_errors["3"]?.errors[0]).toMatchObject({ type: "value_smaller_than_min", details: "steps" });
    const cfg = promptProblem(defs, graph((g) => ((g["3"] as Graph[string]).inputs.cfg = "lots")));
    expect(cfg?.node_errors["3"]?.errors[0]).toMatchObject({ type: "invalid_input_type", details: expect.stringContaining("cfg") });
    // The checkpoint's CLIP (output 1) where the MODEL belongs.
    const mismatch = promptProblem(defs, graph((g) => ((g["3"] as Graph[string]).inputs.model = ["4", 1])));
    expect(mismatch?.node_errors["3"]?.errors[0]).toMatchObject({ type: "return_type_mismatch", details: "model, received_type(CLIP) mismatch input_type(MODEL)" });
    // Python's int() takes "20" as ComfyUI's own validation does.
    expect(promptProblem(defs, graph((g) => ((g["3"] as Graph[string]).inputs.steps = "20")))).toBeUndefined();
  });

  it("puts a link to a node that is not there on the node holding it, as ComfyUI's inner validation does", () => {
    const problem = promptProblem(defs, graph((g) => ((g["3"] as Graph[string]).inputs.positive = ["99", 0])));
    expect(problem?.node_errors["3"]).toMatchObject({ errors: [{ type: "exception_during_inner_validation", details: "'99'" }], dependent_outputs: ["9"], class_type: "KSampler" });
  });

  it("answers a graph without an output node, a node without class_type and an unknown class in ComfyUI's words", () => {
    expect(promptProblem(defs, {})?.error.type).toBe("prompt_no_outputs");
    expect(promptProblem(defs, graph((g) => delete g["9"]))?.error.type).toBe("prompt_no_outputs");
    expect(promptProblem(defs, { ...graph(), "10": { inputs: {} } })).toMatchObject({ error: { type: "invalid_prompt", details: "Node ID '#10'" }, node_errors: {} });
    expect(promptProblem(defs, { ...graph(), "10": { class_type: "NoSuchNode", inputs: {} } })?.error).toMatchObject({ type: "missing_node_type", extra_info: { node_id: "10", class_type: "NoSuchNode" } });
  });

  it("refuses a combo value no backend lists, as value_not_in_list under its node", () => {
    const problem = promptProblem(defs, graph((g) => ((g["3"] as Graph[string]).inputs.sampler_name = "euler_typo")));
    expect(problem?.error.type).toBe("prompt_outputs_failed_validation");
    expect(problem?.node_errors["3"]?.errors).toEqual([
      { type: "value_not_in_list", message: "Value not in list", details: "sampler_name: 'euler_typo' not in (list of length 42)", extra_info: { input_name: "sampler_name", input_config: null, received_value: "euler_typo" } },
    ]);
  });

  it("leaves alone what it cannot know: a file a loader names, a checkpoint (routing matches it), and nodes no output depends on", () => {
    expect(promptProblem(defs, graph((g) => ((g["4"] as Graph[string]).inputs.ckpt_name = "sd_xl_base_1.0")))).toBeUndefined();
    const loads = { ...graph(), "30": { class_type: "LoadImage", inputs: { image: "my upload.png" } }, "31": { class_type: "SaveImage", inputs: { images: ["30", 0], filename_prefix: "x" } } };
    expect(promptProblem(defs, loads)).toBeUndefined();
    expect(promptProblem(defs, { ...graph(), "20": { class_type: "KSampler", inputs: {} } })).toBeUndefined();
  });
});
