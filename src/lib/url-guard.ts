export type UrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

const METADATA_HOSTS = new Set(["metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal", "metadata.azure.com"]);

function ipv4Private(parts: number[]): boolean {
  const [a = 0, b = 0] = parts;
  return (
    a === 0 || // this network
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) || // carrier-grade NAT
    (a === 169 && b === 254) || // link-local, cloud metadata
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0) || // IETF protocol assignments
    (a === 198 && (b === 18 || b === 19)) || // benchmarking
    a >= 224 // multicast, reserved, broadcast
  );
}

const parseIpv4 = (host: string): number[] | undefined => {
  const m = host.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : undefined;
};

/** Expands an IPv6 literal (as the URL parser leaves it, compressed hex) into eight 16-bit groups. */
function parseIpv6(host: string): number[] | undefined {
  const halves = host.split("::");
  if (halves.length > 2) return undefined;
  const toGroups = (s: string) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const head = toGroups(halves[0] ?? "");
  const tail = toGroups(halves[1] ?? "");
  const groups = halves.length === 2 ? [...head, ...Array(8 - head.length - tail.length).fill(0), ...tail] : head;
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

function ipv6Private(g: number[]): boolean {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const embedded = [g6 >> 8, g6 & 255, g7 >> 8, g7 & 255];
  if (g.every((x) => x === 0)) return true; // ::
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0 && g6 === 0 && g7 === 1) return true; // ::1
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) carry an IPv4 address.
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && (g5 === 0xffff || g5 === 0)) return ipv4Private(embedded);
  // IPv4-translated (::ffff:0:a.b.c.d, RFC 2765) too.
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0xffff && g5 === 0) return ipv4Private(embedded);
  if (g0 === 0x64 && g1 === 0xff9b) return ipv4Private(embedded); // NAT64, and its local-use 64:ff9b:1::/48
  // Teredo (2001::/32): the client's IPv4 address is the last 32 bits, inverted.
  if (g0 === 0x2001 && g1 === 0) return ipv4Private([(~g6 >> 8) & 255, ~g6 & 255, (~g7 >> 8) & 255, ~g7 & 255]);
  if (g0 === 0x2002) return ipv4Private([g1 >> 8, g1 & 255, g2 >> 8, g2 & 255]); // 6to4
  // ULA, link-local, site-local (fec0::/10, deprecated but still routed inside sites), multicast.
  return (g0 & 0xfe00) === 0xfc00 || (g0 & 0xffc0) === 0xfe80 || (g0 & 0xffc0) === 0xfec0 || (g0 & 0xff00) === 0xff00;
}

/** Whether a URL host (as `new URL` normalized it) names a private, loopback, link-local or metadata address. */
export function isPrivateAddress(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.+$/, "");
  if (host === "" || host === "localhost" || host.endsWith(".localhost") || METADATA_HOSTS.has(host)) return true;
  if (host.startsWith("[") && host.endsWith("]")) {
    const groups = parseIpv6(host.slice(1, -1));
    return groups ? ipv6Private(groups) : true;
  }
  const v4 = parseIpv4(host);
  return v4 ? ipv4Private(v4) : false;
}

/**
 * Guards a URL the gateway is asked to call or fetch. The WHATWG parser already turns decimal,
 * octal, hex and short IPv4 spellings into dotted quads and compresses IPv6, so the check runs
 * on the normalized host.
 */
export function checkOutboundUrl(raw: string, opts: { allowPrivate: boolean }): UrlCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: "not a valid URL" };
  }
  const allowed = opts.allowPrivate ? ["https:", "http:"] : ["https:"];
  if (!allowed.includes(url.protocol)) return { ok: false, reason: opts.allowPrivate ? "must be an http or https URL" : "must be an https URL" };
  if (url.username || url.password) return { ok: false, reason: "must not carry credentials" };
  if (!opts.allowPrivate && isPrivateAddress(url.hostname)) return { ok: false, reason: "must not point at a private, loopback, link-local or metadata address" };
  return { ok: true, url };
}
