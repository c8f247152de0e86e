import { describe, expect, it } from "vitest";
import { checkOutboundUrl } from "../../../src/lib/url-guard";

const REFUSED = [
  "https://127.0.0.1/",
  "https://127.0.0.1./",
  "https://127.1/",
  "https://2130706433/",
  "https://0177.0.0.1/",
  "https://0x7f.0.0.1/",
  "https://0x7f000001/",
  "https://0/",
  "https://0.0.0.0/",
  "https://localhost/",
  "https://LOCALHOST./",
  "https://api.localhost/",
  "https://10.1.2.3/",
  "https://172.31.255.255/",
  "https://192.168.0.10/",
  "https://100.64.1.1/",
  "https://169.254.169.254/latest/meta-data/",
  "https://metadata.google.internal/",
  "https://[::1]/",
  "https://[::]/",
  "https://[::ffff:127.0.0.1]/",
  "https://[::ffff:a9fe:a9fe]/",
  "https://[fe80::1%25eth0]/",
  "https://[fc00::1]/",
  "https://[fec0::1]/",
  "https://[fd00:ec2::254]/",
  "https://[64:ff9b::a00:1]/",
  "https://[2002:7f00:1::]/",
  // IPv4-translated (RFC 2765), local-use NAT64 (RFC 8215) and Teredo (client 127.0.0.1, inverted).
  "https://[::ffff:0:127.0.0.1]/",
  "https://[::ffff:0:a9fe:a9fe]/",
  "https://[64:ff9b:1::a00:1]/",
  "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
  "https://224.0.0.1/",
];

describe("outbound URL guard", () => {
  it.each(REFUSED)("refuses %s", (url) => {
    expect(checkOutboundUrl(url, { allowPrivate: false }).ok).toBe(false);
  });

  it.each(["https://hooks.example.com/easel", "https://8.8.8.8/x", "https://[2606:4700::1111]/", "https://172.32.0.1/", "https://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]/"])("allows the public %s", (url) => {
    expect(checkOutboundUrl(url, { allowPrivate: false }).ok).toBe(true);
  });

  it("refuses plain http, other schemes and credentials unless private URLs are allowed (credentials never)", () => {
    expect(checkOutboundUrl("http://hooks.example.com/", { allowPrivate: false })).toMatchObject({ ok: false, reason: expect.stringMatching(/https/) });
    expect(checkOutboundUrl("ftp://hooks.example.com/", { allowPrivate: true }).ok).toBe(false);
    expect(checkOutboundUrl("file:///etc/passwd", { allowPrivate: true }).ok).toBe(false);
    expect(checkOutboundUrl("https://user:pass@hooks.example.com/", { allowPrivate: true }).ok).toBe(false);
    expect(checkOutboundUrl("http://127.0.0.1:9000/hook", { allowPrivate: true }).ok).toBe(true);
    expect(checkOutboundUrl("not a url", { allowPrivate: true }).ok).toBe(false);
  });
});
