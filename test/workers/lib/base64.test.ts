import { describe, expect, it } from "vitest";
import { base64ToBytes, base64Pieces, bytesToBase64 } from "../../../src/lib/base64";

const bytes = (n: number) => new Uint8Array(n).map((_, i) => (i * 7919 + 13) % 256);

describe("base64 of images", () => {
  it("decodes standard and url-safe base64, padded or not, whitespace and line breaks anywhere", () => {
    expect(base64ToBytes("AQID")).toEqual(new Uint8Array([1, 2, 3]));
    expect(base64ToBytes("+/8=")).toEqual(new Uint8Array([251, 255]));
    expect(base64ToBytes("-_8")).toEqual(new Uint8Array([251, 255]));
    expect(base64ToBytes(" AQ\nID \r\n")).toEqual(new Uint8Array([1, 2, 3]));
    expect(base64ToBytes("")).toEqual(new Uint8Array());
  });

  it("refuses what is not base64: other characters, data after padding, a lone extra character, a data URI", () => {
    for (const bad of ["AQ!D", "AQ==AQ", "AQIDA", "data:image/png;base64,AQID"]) expect(base64ToBytes(bad)).toBeNull();
  });

  it("decodes a long image's text whole, line breaks and padding falling across the pieces it is read in", () => {
    const image = bytes(400_000);
    const wrapped = bytesToBase64(image).replace(/.{76}/g, "$&\r\n");
    expect(base64ToBytes(wrapped)).toEqual(image);
    expect(base64ToBytes(bytesToBase64(image.subarray(0, 200_001)).replace(/=+$/, ""))).toEqual(image.subarray(0, 200_001));
  });

  it("encodes piece by piece to the same text as at once", () => {
    const image = bytes(200_002);
    const text = Array.from(base64Pieces(image), (piece) => new TextDecoder().decode(piece)).join("");
    expect(text).toBe(bytesToBase64(image));
  });
});
