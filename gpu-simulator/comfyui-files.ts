/**
 * A ComfyUI install's `input`, `output` and `temp` directories, in memory: uploads (with ComfyUI's
 * ` (1)` renaming), SaveImage's `<prefix>_<counter>_.png` names, and what `/view` reads.
 */
import { createHash } from "node:crypto";

export type Dir = "input" | "output" | "temp";
export const DIRS: readonly Dir[] = ["input", "output", "temp"];

/** Files kept at most; the oldest go first (a long benchmark must not fill the memory). */
const MAX_FILES = 2000;

const key = (dir: Dir, subfolder: string, name: string) => `${dir}/${subfolder ? `${subfolder}/` : ""}${name}`;

/** A file name or subfolder ComfyUI would refuse as a path out of its directory. */
export const unsafePath = (p: string) => p.startsWith("/") || p.startsWith("\\") || p.split(/[/\\]/).includes("..");

export class ComfyFiles {
  private readonly files = new Map<string, Buffer>();
  private readonly counters = new Map<string, number>();

  get(dir: Dir, subfolder: string, name: string): Buffer | undefined {
    return this.files.get(key(dir, subfolder, name));
  }

  /** The top-level input files, as LoadImage's combo lists them. */
  inputFiles(): string[] {
    return [...this.files.keys()].filter((k) => k.startsWith("input/") && !k.slice(6).includes("/")).map((k) => k.slice(6));
  }

  /**
   * LoadImage's `image` value: `sub/name.png`, optionally annotated ` [output]`/` [temp]`/` [input]`
   * (folder_paths.annotated_filepath).
   */
  resolve(image: string): Buffer | undefined {
    const m = /^(.*) \[(input|output|temp)\]$/.exec(image);
    const dir = (m?.[2] as Dir | undefined) ?? "input";
    const path = m?.[1] ?? image;
    if (!path || unsafePath(path)) return undefined;
    const at = path.lastIndexOf("/");
    return this.get(dir, at < 0 ? "" : path.slice(0, at), path.slice(at + 1));
  }

  /** `POST /upload/image`: without overwrite, a name taken by other bytes becomes `name (1).ext`, the same bytes keep it. */
  upload(dir: Dir, subfolder: string, name: string, bytes: Buffer, overwrite: boolean): string {
    const dot = name.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
    let chosen = name;
    const digest = (b: Buffer) => createHash("sha256").update(b).digest("hex");
    for (let i = 1; !overwrite && i <= 10_000; i++) {
      const existing = this.get(dir, subfolder, chosen);
      if (!existing || digest(existing) === digest(bytes)) break;
      chosen = `${stem} (${i})${ext}`;
    }
    this.files.set(key(dir, subfolder, chosen), bytes);
    this.evict();
    return chosen;
  }

  /**
   * SaveImage/PreviewImage: `prefix` may name a subfolder (`a/b` → subfolder `a`, files `b_00001_.png`);
   * the counter goes on from the highest one saved under that prefix.
   */
  save(dir: Dir, prefix: string, images: Buffer[]): { filename: string; subfolder: string; type: Dir }[] {
    const at = prefix.lastIndexOf("/");
    const subfolder = at < 0 ? "" : prefix.slice(0, at);
    const base = prefix.slice(at + 1);
    const counterKey = key(dir, subfolder, base);
    let counter = (this.counters.get(counterKey) ?? 0) + 1;
    const saved = images.map((bytes) => {
      const filename = `${base}_${String(counter).padStart(5, "0")}_.png`;
      counter++;
      this.files.set(key(dir, subfolder, filename), bytes);
      return { filename, subfolder, type: dir };
    });
    this.counters.set(counterKey, counter - 1);
    this.evict();
    return saved;
  }

  private evict(): void {
    for (const k of this.files.keys()) {
      if (this.files.size <= MAX_FILES) return;
      this.files.delete(k);
    }
  }
}
