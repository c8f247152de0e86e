/**
 * Replicate's files: what the JS client uploads for a Buffer or Blob input (`POST /v1/files`,
 * multipart `content`), kept in R2 for the tenant that sent it. Its `urls.get` is an input: a
 * prediction naming it reads the bytes from R2 directly, and only for that tenant.
 */
import type { Env } from "../../env";
import { EaselError, invalid } from "../../errors";
import { hex, sha256Hex } from "../../lib/crypto";
import { sniffImage } from "../../lib/image-sniff";
import { MAX_INIT_IMAGE_BYTES } from "../../jobs/intake";
import { tenantHome } from "../../tenant-shards";

/** As Replicate keeps an upload: a day. The tenant's object deletes it then; an expired file met before that is refused and deleted. */
const FILE_TTL_MS = 24 * 3600_000;
const FILE_ID = /^[0-9a-f]{32}$/;

const fileKey = (id: string): string => `replicate-files/${id}`;
export const fileUrl = (base: string, id: string): string => `${base}/v1/files/${id}`;

const notFound = () => new EaselError(404, "not_found", "file not found");

interface FileMeta {
  tenant: string;
  name: string;
  content_type: string;
  created_at: string;
  sha256: string;
  metadata: string;
}

/** R2 keeps at most 2 KiB of custom metadata on an object, keys and values (UTF-8) together. */
const R2_METADATA_BYTES = 2048;
const MAX_NAME_BYTES = 255;
const MAX_TYPE_BYTES = 127;
const utf8Length = (text: string): number => new TextEncoder().encode(text).byteLength;
const metaBytes = (meta: FileMeta): number => Object.entries(meta).reduce((n, [k, v]) => n + utf8Length(k) + utf8Length(v), 0);

/** A file's name and type, then its metadata, within what R2 keeps beside it: else a 422 naming the part. */
function checkMetaSize(meta: FileMeta): void {
  if (utf8Length(meta.name) > MAX_NAME_BYTES) throw invalid("content", `the file's name is over ${MAX_NAME_BYTES} bytes`);
  if (utf8Length(meta.content_type) > MAX_TYPE_BYTES) throw invalid("content", `the file's content type is over ${MAX_TYPE_BYTES} bytes`);
  const over = metaBytes(meta) - R2_METADATA_BYTES;
  if (over > 0) throw invalid("metadata", `at most ${Math.max(0, utf8Length(meta.metadata) - over)} bytes of JSON (UTF-8) with this file's name`);
}

export async function storeFile(env: Env, tenant: string, file: File, metadata: unknown, nowMs = Date.now()) {
  if (file.size > MAX_INIT_IMAGE_BYTES) throw invalid("content", `over ${MAX_INIT_IMAGE_BYTES} bytes`);
  const bytes = new Uint8Array(await file.arrayBuffer());
  const id = hex(crypto.getRandomValues(new Uint8Array(16)));
  // A Buffer comes as application/octet-stream: an image says what it is.
  const sniffed = sniffImage(bytes);
  const meta: FileMeta = {
    tenant,
    name: file.name || id,
    content_type: sniffed && (!file.type || file.type === "application/octet-stream") ? sniffed.contentType : file.type || "application/octet-stream",
    created_at: new Date(nowMs).toISOString(),
    sha256: await sha256Hex(bytes),
    metadata: JSON.stringify(metadata ?? {}),
  };
  checkMetaSize(meta);
  // Deleted when it expires by the tenant's object, whether or not anyone meets it again.
  await tenantHome(env, tenant).expireFileAt(fileKey(id), nowMs + FILE_TTL_MS);
  await env.IMAGES.put(fileKey(id), bytes, { httpMetadata: { contentType: meta.content_type }, customMetadata: { ...meta } });
  return { id, size: bytes.byteLength, meta };
}

export function fileObject(base: string, file: { id: string; size: number; meta: FileMeta }) {
  return {
    id: file.id,
    name: file.meta.name,
    content_type: file.meta.content_type,
    size: file.size,
    etag: file.meta.sha256,
    checksums: { sha256: file.meta.sha256 },
    metadata: JSON.parse(file.meta.metadata) as unknown,
    created_at: file.meta.created_at,
    expires_at: new Date(Date.parse(file.meta.created_at) + FILE_TTL_MS).toISOString(),
    urls: { get: fileUrl(base, file.id) },
  };
}

const isMeta = (m: Record<string, string>): m is Record<string, string> & FileMeta => ["tenant", "name", "content_type", "created_at", "sha256", "metadata"].every((k) => typeof m[k] === "string");

/** The tenant's file, with its bytes when asked; another tenant's or an expired one does not exist. */
export async function readFile(env: Env, tenant: string, id: string, opts: { bytes?: boolean; nowMs?: number } = {}) {
  if (!FILE_ID.test(id)) return undefined;
  const body = opts.bytes ? await env.IMAGES.get(fileKey(id)) : null;
  const obj = body ?? (opts.bytes ? null : await env.IMAGES.head(fileKey(id)));
  const meta = obj?.customMetadata;
  if (!obj || !meta || !isMeta(meta) || meta.tenant !== tenant) return undefined;
  if (Date.parse(meta.created_at) + FILE_TTL_MS < (opts.nowMs ?? Date.now())) {
    await env.IMAGES.delete(fileKey(id));
    return undefined;
  }
  const bytes = body ? new Uint8Array(await body.arrayBuffer()) : undefined;
  return { id, size: obj.size, meta, bytes };
}

export async function deleteFile(env: Env, tenant: string, id: string): Promise<void> {
  if (!(await readFile(env, tenant, id))) throw notFound();
  await env.IMAGES.delete(fileKey(id));
}

export async function requireFile(env: Env, tenant: string, id: string, opts: { bytes?: boolean } = {}) {
  const found = await readFile(env, tenant, id, opts);
  if (!found) throw notFound();
  return found;
}

/**
 * An `image` input naming one of the gateway's own file URLs: its bytes, read from R2 for this
 * tenant only. Undefined for any other string (a URL or data URI that intake reads as usual).
 */
export async function fileInput(env: Env, tenant: string, base: string, value: string, field: string): Promise<Uint8Array | undefined> {
  const prefix = `${base}/v1/files/`;
  if (!value.startsWith(prefix)) return undefined;
  const found = await readFile(env, tenant, value.slice(prefix.length), { bytes: true });
  if (!found?.bytes) throw invalid(field, "no such file (files are kept a day, for the tenant that uploaded them)");
  return found.bytes;
}
