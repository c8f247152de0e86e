import { describe, expect, it } from "vitest";
import { parseJsonText, parseStreamingJson, textStream, type StringSink } from "../../../src/lib/json-stream";

/** Reads `text` one way, collecting what each sink was given. */
async function read(how: "stream" | "whole", text: string, at: readonly string[], maxString = 64) {
  const got: string[] = [];
  const open = (n: number): StringSink => {
    got[n] = "";
    return { write: (piece) => void (got[n] += piece), end: async () => undefined };
  };
  const parsed = how === "whole" ? await parseJsonText(text, at, open, maxString) : await parseStreamingJson(textStream(text), at, open, maxString);
  return { value: parsed.value, head: parsed.head, got };
}

const long = "x".repeat(100);
const documents: [string, string, readonly string[]][] = [
  ["an A1111 answer with an echoed init image", JSON.stringify({ images: ["aGVsbG8=", "d29ybGQ="], parameters: { init_images: [long], prompt: "a \"cat\" \\ é \u2603" }, info: "{\"seed\": 1}" }), ["images"]],
  ["RunPod's nested output", JSON.stringify({ id: "r1", status: "COMPLETED", output: { images: ["YQ==", 7, { nested: long, short: "kept" }] } }), ["output", "images"]],
  ["A1111's one upscaled image", JSON.stringify({ image: long, html_info: "<p>done</p>" }), ["image"]],
  ["images under another key only", JSON.stringify({ data: { images: ["not at the path"] }, images: [] }), ["images"]],
];

describe("parseJsonText", () => {
  for (const [name, text, at] of documents) {
    it(`reads ${name} as the streaming parser does`, async () => {
      expect(await read("whole", text, at)).toEqual(await read("stream", text, at));
    });
  }

  it("answers no document for a broken one, as the streaming parser does", async () => {
    const text = '{"images": ["abc"';
    expect((await read("whole", text, ["images"])).value).toBeUndefined();
    expect((await read("stream", text, ["images"])).value).toBeUndefined();
  });

  it("hands every image whole to its sink and empties long strings elsewhere", async () => {
    const { value, got } = await read("whole", documents[0]![1], ["images"]);
    expect(got).toEqual(["aGVsbG8=", "d29ybGQ="]);
    expect(value).toMatchObject({ images: ["", ""], parameters: { init_images: [""] }, info: "{\"seed\": 1}" });
  });
});
