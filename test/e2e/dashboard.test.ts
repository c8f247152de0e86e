/**
 * The job inspector (/dashboard) in real headless Chromium against a real gateway, simulator and
 * webhook receiver: what a person signing in with an API key sees and can do.
 * Screenshots go to test-results/dashboard/.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Browser, Page, Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "./support/browser";
import { api, waitForJob, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KEY = "sk_inspector";
const OUT = resolve(import.meta.dirname, "../../test-results/dashboard");

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let browser: Browser;
let page: Page;
let dir: string;
let client: ReturnType<typeof api>;
/** Exceptions the page's own scripts threw (a view that throws stays frozen on screen). */
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 300 }) } });
  receiver = await startReceiver({ secrets: [SECRET] });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-dashboard-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ acme: { api_keys: [KEY], webhook_secrets: [SECRET] }, other: { api_keys: ["sk_other"], webhook_secrets: [SECRET] } }),
      BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url, max_concurrency: 2 }]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
  client = api(gw.url, KEY);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (err) => pageErrors.push(err.message));
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await sim?.stop();
  await receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const submit = async (body: Record<string, unknown>): Promise<JobView> => {
  const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "a cat wizard", width: 256, height: 256, steps: 4, webhook: `${receiver.url}/hook`, ...body });
  expect(res.status).toBe(202);
  return (await res.json()) as JobView;
};

/** Counts the page's requests matching `match`, and how many of them were answered, so a test can wait for all to end. */
const countRequests = (p: Page, match: (r: Request) => boolean) => {
  const seen = { sent: 0, answered: 0 };
  p.on("request", (r) => void (match(r) && seen.sent++));
  p.on("requestfinished", (r) => void (match(r) && seen.answered++));
  p.on("requestfailed", (r) => void (match(r) && seen.answered++));
  return seen;
};

/** An element's text, or null when it is not in the page (the wait for it is bounded). */
const textOf = (p: Page, selector: string) => p.locator(selector).textContent({ timeout: 2000 }).catch(() => null);

/**
 * A page of its own, signed in, whose clock is stopped: its periodic refreshes read once, on
 * arrival, and never again, so what it shows later came from the live timeline or a button.
 */
const pageWithoutRefresh = async () => {
  const p = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const now = Date.now();
  await p.clock.install({ time: now });
  await p.clock.pauseAt(now + 1000);
  await p.goto(`${gw.url}/dashboard`);
  await p.getByLabel("API key").fill(KEY);
  await p.keyboard.press("Enter");
  await p.getByRole("heading", { name: "Jobs" }).waitFor();
  return p;
};

/** Every cell of `rows` lies within a `width`-wide window and shows all of its content: nothing is off to the side. */
const expectCellsInView = async (p: Page, rows: string, width: number) => {
  const cells = await p.locator(`${rows} > *`).evaluateAll((els: { textContent: string | null; scrollWidth: number; clientWidth: number; getBoundingClientRect(): { left: number; right: number } }[]) =>
    els.map((el) => ({ text: el.textContent, left: el.getBoundingClientRect().left, right: el.getBoundingClientRect().right, clipped: el.scrollWidth > el.clientWidth })),
  );
  expect(cells.length).toBeGreaterThan(0);
  for (const c of cells) {
    expect(c.left, `${c.text} at ${width} px`).toBeGreaterThanOrEqual(0);
    expect(c.right, `${c.text} at ${width} px`).toBeLessThanOrEqual(width);
    expect(c.clipped, `${c.text} at ${width} px`).toBe(false);
  }
};

describe("the job inspector", () => {
  it("is served by the gateway at /dashboard", async () => {
    const res = await fetch(`${gw.url}/dashboard`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("Easel inspector");
  });

  it("shows no sections before sign-in", async () => {
    const fresh = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await fresh.goto(`${gw.url}/dashboard`);
    await fresh.getByLabel("API key").waitFor();
    expect(await fresh.getByRole("link", { name: "Backends" }).isVisible()).toBe(false);
    await fresh.close();
  });

  it("says why a sign-in failed: a key no header can carry, the gateway's own error, no gateway", async () => {
    const fresh = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const v1 = countRequests(fresh, (r) => new URL(r.url()).pathname.startsWith("/v1/"));
    await fresh.goto(`${gw.url}/dashboard`);
    const error = () => fresh.locator("#signin-error").textContent();
    await fresh.getByLabel("API key").fill("sk_ключ");
    await fresh.keyboard.press("Enter");
    await expect.poll(error).toContain("not a valid API key");
    expect(v1.sent).toBe(0);

    // What a gateway with a broken TENANTS answers (a 500 with its own message), and no answer at all.
    const signInCheck = (url: URL) => url.pathname === "/v1/jobs" && url.searchParams.get("limit") === "1";
    await fresh.route(signInCheck, (r) => r.fulfill({ status: 500, contentType: "application/json", body: JSON.stringify({ error: { code: "config_invalid", message: "TENANTS is invalid: not valid JSON" } }) }));
    await fresh.getByLabel("API key").fill(KEY);
    await fresh.keyboard.press("Enter");
    await expect.poll(error).toContain("TENANTS is invalid: not valid JSON");
    await fresh.screenshot({ path: join(OUT, "signin-gateway-error.png") });
    await fresh.unroute(signInCheck);
    await fresh.route(signInCheck, (r) => r.abort("connectionrefused"));
    await fresh.keyboard.press("Enter");
    await expect.poll(error).toBe("The gateway could not be reached.");
    await fresh.close();
  });

  it("asks for a key when the one entered is only spaces, and sends nothing", async () => {
    const fresh = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const v1 = countRequests(fresh, (r) => new URL(r.url()).pathname.startsWith("/v1/"));
    await fresh.goto(`${gw.url}/dashboard`);
    await fresh.getByLabel("API key").fill("   ");
    await fresh.keyboard.press("Enter");
    await expect.poll(() => fresh.locator("#signin-error").textContent()).toBe("Enter an API key: the one given is empty.");
    expect(v1.sent).toBe(0);
    await fresh.close();
  });

  it("refuses an unknown key, then signs in with a real one using only the keyboard", async () => {
    await page.goto(`${gw.url}/dashboard`);
    await page.getByLabel("API key").fill("sk_wrong");
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#signin-error").textContent()).toContain("not known");
    await page.getByLabel("API key").fill(KEY);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    // The key is in session storage, never in the address.
    expect(await page.evaluate("sessionStorage.getItem('easel.apiKey')")).toBe(KEY);
    expect(page.url()).not.toContain(KEY);
  });

  it("takes back a refresh error once refreshes work again, and shows when the list was last read", async () => {
    await page.goto(`${gw.url}/dashboard/#/jobs`);
    await expect.poll(() => textOf(page, "#updated")).toMatch(/^updated \d\d:\d\d:\d\d UTC$/);
    const v1 = (url: URL) => url.pathname.startsWith("/v1/");
    await page.route(v1, (r) => r.abort("connectionrefused"));
    try {
      await expect.poll(() => textOf(page, "#status"), { timeout: 10_000 }).toContain("Could not refresh");
    } finally {
      await page.unroute(v1);
    }
    const stale = await textOf(page, "#updated");
    await expect.poll(() => textOf(page, "#status"), { timeout: 10_000 }).toBe("");
    await expect.poll(() => textOf(page, "#updated"), { timeout: 10_000 }).not.toBe(stale);
  });

  it("shows a submitted job appear and turn succeeded with its thumbnail", async () => {
    const job = await submit({ track_id: "inspector-1" });
    const row = page.locator(`tr[data-job="${job.id}"]`);
    await row.waitFor({ timeout: 15_000 });
    await expect.poll(() => row.locator(".badge").textContent(), { timeout: 20_000 }).toBe("succeeded");
    const thumb = row.locator("td.thumb img");
    await thumb.waitFor();
    await expect.poll(() => thumb.evaluate((img: { complete: boolean; naturalWidth: number }) => img.complete && img.naturalWidth), { timeout: 10_000 }).toBe(256);
    await page.screenshot({ path: join(OUT, "jobs.png"), fullPage: true });
  });

  it("shows a small, lazily loaded thumbnail of each of a job's outputs in the list", async () => {
    const job = await waitForJob(client, (await submit({ track_id: "inspector-four", samples: 4 })).id);
    expect(job.output).toHaveLength(4);
    const thumbs = page.locator(`tr[data-job="${job.id}"] td.thumb img`);
    await expect.poll(() => thumbs.count(), { timeout: 10_000 }).toBe(4);
    const shown = await thumbs.evaluateAll((imgs: { src: string; loading: string; getBoundingClientRect(): { width: number; height: number } }[]) =>
      imgs.map((img) => ({ file: img.src.split("?")[0], loading: img.loading, width: img.getBoundingClientRect().width, height: img.getBoundingClientRect().height })),
    );
    // Links are signed afresh on each read: the file is what must match.
    expect(shown.map((t) => t.file).sort()).toEqual(job.output.map((o) => new URL(o.url, gw.url).href.split("?")[0]).sort());
    for (const t of shown) {
      expect(t.loading).toBe("lazy");
      // Four share the space of one, so a row of four outputs is no taller than a row of one.
      expect(t.width).toBeLessThanOrEqual(32);
      expect(t.height).toBeLessThanOrEqual(32);
    }
    await page.screenshot({ path: join(OUT, "jobs-four-outputs.png") });
  });

  it("opens the job: full image, parameters, timeline, attempts and its delivery; redeliver makes a second attempt", async () => {
    const job = (await (await client.get("/v1/jobs?track_id=inspector-1")).json()) as { data: JobView[] };
    const id = job.data[0]?.id ?? "";
    await page.locator(`tr[data-job="${id}"] a`).click();
    await page.getByRole("heading", { name: `Job ${id}` }).waitFor();
    const full = page.locator("#job-images img");
    await expect.poll(() => full.evaluate((img: { complete: boolean; naturalWidth: number }) => img.complete && img.naturalWidth), { timeout: 10_000 }).toBe(256);
    await expect.poll(() => page.locator("#job-events").textContent()).toContain("job.succeeded");
    const timeline = (await page.locator("#job-events li strong").allTextContents()).join(" ");
    expect(timeline).toMatch(/job\.queued.*job\.started.*attempt\.started.*job\.succeeded/);
    const params = await page.locator("#job-params").textContent();
    // What was asked for, as the gateway took it: the prompt, the size, the steps and the webhook.
    for (const shown of ["inspector-1", "a cat wizard", "256×256", "steps4", `${receiver.url}/hook`]) expect(params).toContain(shown);
    expect(await page.locator("#job-attempts").textContent()).toContain("sim");
    expect(await page.locator("#job-progress").evaluate((p: { value: number }) => p.value)).toBe(1);
    const deliveries = page.locator("#job-deliveries tr");
    await expect.poll(() => deliveries.count(), { timeout: 15_000 }).toBe(1);
    expect(await deliveries.first().textContent()).toContain("job.succeeded");
    expect(await deliveries.first().textContent()).toContain("200");

    await page.getByRole("button", { name: "Redeliver webhook" }).click();
    await expect.poll(() => deliveries.count(), { timeout: 15_000 }).toBe(2);
    expect(await deliveries.nth(1).locator("td").nth(1).textContent()).toBe("2");
    const got = receiver.deliveries.filter((d) => (d.json as { data?: { id?: string } }).data?.id === id);
    expect(got).toHaveLength(2);
    expect(got[0]?.headers["webhook-id"]).toBe(got[1]?.headers["webhook-id"]);
    await page.screenshot({ path: join(OUT, "job.png"), fullPage: true });
  });

  it("cancels a running job from its page", async () => {
    await sim.config({ msPerImage: 20_000 });
    try {
      const job = await submit({ track_id: "inspector-cancel" });
      await page.goto(`${gw.url}/dashboard/#/jobs/${job.id}`);
      await expect.poll(() => page.locator("#job-status").textContent(), { timeout: 15_000 }).toBe("running");
      const cancels = countRequests(page, (r) => r.method() === "POST" && r.url().endsWith("/cancel"));
      // A double click sends one cancel: the button is off while it is on its way.
      await page.getByRole("button", { name: "Cancel job" }).dblclick();
      await expect.poll(() => page.locator("#job-status").textContent()).toBe("canceled");
      await expect.poll(() => cancels.sent > 0 && cancels.answered === cancels.sent).toBe(true);
      expect(cancels.sent).toBe(1);
      expect(await page.locator("#status").textContent()).toBe("Job canceled.");
      expect(await page.getByRole("heading", { name: "Images" }).isVisible()).toBe(false);
      await page.screenshot({ path: join(OUT, "job-canceled.png"), fullPage: true });
      expect((await waitForJob(client, job.id)).status).toBe("canceled");
    } finally {
      await sim.config({ msPerImage: 300 });
    }
  });

  it("shows a job's end as soon as its live timeline does: status, completed time, Cancel off, the attempt's outcome", async () => {
    await sim.config({ msPerImage: 3000 });
    const p = await pageWithoutRefresh();
    try {
      const job = await submit({ track_id: "inspector-live-end" });
      await p.goto(`${gw.url}/dashboard/#/jobs/${job.id}`);
      await expect.poll(() => textOf(p, "#job-status")).toMatch(/^(queued|running)$/);
      await expect.poll(() => textOf(p, "#job-events"), { timeout: 20_000 }).toContain("job.succeeded");
      await expect.poll(() => textOf(p, "#job-status")).toBe("succeeded");
      expect(await p.getByRole("button", { name: "Cancel job" }).isDisabled()).toBe(true);
      expect(await textOf(p, "#job-params")).toMatch(/completed\d{4}-/);
      expect(await textOf(p, "#job-attempts")).toContain("succeeded");
    } finally {
      await sim.config({ msPerImage: 300 });
      await p.close();
    }
  });

  it("after a refused cancel shows the job as it now is, with Cancel off", async () => {
    await sim.config({ msPerImage: 3000 });
    const p = await pageWithoutRefresh();
    try {
      // No live timeline either: only the cancel's answer can tell this page that the job ended.
      await p.route(
        (url) => url.pathname.endsWith("/events"),
        (r) => (r.request().headers().accept === "text/event-stream" ? r.abort() : r.continue()),
      );
      const job = await submit({ track_id: "inspector-late-cancel" });
      await p.goto(`${gw.url}/dashboard/#/jobs/${job.id}`);
      await expect.poll(() => textOf(p, "#job-status")).toMatch(/^(queued|running)$/);
      expect((await waitForJob(client, job.id)).status).toBe("succeeded");
      await p.getByRole("button", { name: "Cancel job" }).click();
      await expect.poll(() => textOf(p, "#status")).toContain("Cancel failed");
      await expect.poll(() => textOf(p, "#job-status")).toBe("succeeded");
      await expect.poll(() => p.getByRole("button", { name: "Cancel job" }).isDisabled()).toBe(true);
    } finally {
      await sim.config({ msPerImage: 300 });
      await p.close();
    }
  });

  it("follows a failed job that a RunPod retry runs again: queued or running, then its new end", async () => {
    await sim.config({ errorRate: 1, msPerImage: 300 });
    const run = async (path: string, body?: unknown) =>
      fetch(`${gw.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    try {
      const { id } = (await (await run("/v2/inspector-ep/run", { input: { api_name: "txt2img", prompt: "retried", width: 64, height: 64 } })).json()) as { id: string };
      expect((await waitForJob(client, id)).status).toBe("failed");
      await page.goto(`${gw.url}/dashboard/#/jobs/${id}`);
      await expect.poll(() => textOf(page, "#job-status"), { timeout: 10_000 }).toBe("failed");
      await sim.config({ errorRate: 0, msPerImage: 3000 });
      expect((await run(`/v2/inspector-ep/retry/${id}`)).status).toBe(200);
      await expect.poll(() => textOf(page, "#job-status"), { timeout: 10_000 }).toMatch(/^(queued|running)$/);
      await expect.poll(() => textOf(page, "#job-status"), { timeout: 20_000 }).toBe("succeeded");
    } finally {
      await sim.config({ errorRate: 0, msPerImage: 300 });
    }
  });

  it("filters the list by track_id", async () => {
    const other = await submit({ track_id: "inspector-2" });
    await page.goto(`${gw.url}/dashboard/#/jobs`);
    await page.locator(`tr[data-job="${other.id}"]`).waitFor({ timeout: 15_000 });
    await expect.poll(() => page.locator(`tr[data-job="${other.id}"] .badge`).textContent(), { timeout: 20_000 }).toBe("succeeded");
    await page.screenshot({ path: join(OUT, "jobs-all.png"), fullPage: true });
    await page.getByLabel("Track id").fill("inspector-1");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect.poll(async () => (await page.locator("#jobs-body tr td:nth-child(5)").allTextContents()).join(","), { timeout: 10_000 }).toBe("inspector-1");
  });

  it("shows the backends panel", async () => {
    await page.getByRole("link", { name: "Backends" }).click();
    const row = page.locator("#backends-body tr", { hasText: "sim" });
    await row.waitFor();
    expect(await row.textContent()).toMatch(/a1111.*closed/);
  });

  it("says until when a circuit is open, and no past time for a half-open one", async () => {
    const real = (await (await client.get("/v1/backends")).json()) as { data: Record<string, unknown>[] };
    const sim0 = real.data[0] ?? {};
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    // As the gateway reports them: an open circuit ends at open_until; past it the circuit is half open and keeps that time.
    const backends = (url: URL) => url.pathname === "/v1/backends";
    await page.route(backends, (r) =>
      r.fulfill({ json: { ...real, data: [{ ...sim0, name: "cooling", circuit: "open", open_until: at(60_000) }, { ...sim0, name: "probing", circuit: "half_open", open_until: at(-60_000) }] } }),
    );
    try {
      await page.goto(`${gw.url}/dashboard/#/jobs`);
      await page.getByRole("link", { name: "Backends" }).click();
      const circuit = (name: string) => page.locator("#backends-body tr", { hasText: name }).locator("td").nth(3);
      await expect.poll(() => circuit("probing").textContent()).toBe("half open");
      expect(await circuit("cooling").textContent()).toMatch(/^open until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    } finally {
      await page.unroute(backends);
    }
  });

  it("shows every figure of the backends and of a webhook delivery on a phone, without scrolling sideways", async () => {
    const job = await submit({ track_id: "inspector-phone" });
    await waitForJob(client, job.id);
    await expect.poll(async () => ((await (await client.get(`/v1/jobs/${job.id}/deliveries`)).json()) as { data: unknown[] }).data.length, { timeout: 20_000 }).toBeGreaterThan(0);
    await page.setViewportSize({ width: 375, height: 812 });
    try {
      await page.goto(`${gw.url}/dashboard/#/jobs/${job.id}`);
      await page.locator("#job-deliveries tr").first().waitFor();
      await expectCellsInView(page, "#job-deliveries tr", 375);
      await page.screenshot({ path: join(OUT, "job-375.png"), fullPage: true });
      await page.getByRole("link", { name: "Backends" }).click();
      await page.locator("#backends-body tr").first().waitFor();
      await expectCellsInView(page, "#backends-body tr", 375);
      await page.screenshot({ path: join(OUT, "backends-375.png"), fullPage: true });
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  it("offers no redelivery for an ended job that has no webhook", async () => {
    const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "no hook", width: 64, height: 64, steps: 1 });
    const job = (await res.json()) as JobView;
    await waitForJob(client, job.id);
    await page.goto(`${gw.url}/dashboard/#/jobs/${job.id}`);
    await expect.poll(() => page.locator("#job-status").textContent()).toContain("succeeded");
    expect(await page.getByRole("button", { name: "Redeliver webhook" }).isDisabled()).toBe(true);
    expect(await page.locator("#job-params").textContent()).toContain("none");
  });

  it("shows a run of progress readings as one row that grows, every other event as its own", async () => {
    await sim.config({ msPerImage: 6000 });
    let job: JobView;
    try {
      job = await submit({ track_id: "inspector-progress" });
      await page.goto(`${gw.url}/dashboard/#/jobs/${job.id}`);
      await waitForJob(client, job.id);
    } finally {
      await sim.config({ msPerImage: 300 });
    }
    const events = ((await (await client.get(`/v1/jobs/${job.id}/events`)).json()) as { data: { type: string }[] }).data.map((e) => e.type);
    expect(events.filter((t) => t === "job.progress").length).toBeGreaterThan(1);
    const rows = events.filter((t, i) => !(t === "job.progress" && events[i - 1] === "job.progress"));
    await expect.poll(() => page.locator("#job-events li strong").allTextContents(), { timeout: 10_000 }).toEqual(rows);
    expect(await page.locator("#job-events li", { hasText: "job.progress" }).first().textContent()).toMatch(/\d+% → \d+% \(\d+ readings\)/);
    await page.screenshot({ path: join(OUT, "job-progress.png"), fullPage: true });
  });

  it("offers no redelivery when the job's webhook_events left out its ending, and says why", async () => {
    const job = await submit({ track_id: "inspector-filtered", webhook_events: ["job.failed"] });
    await waitForJob(client, job.id);
    await page.goto(`${gw.url}/dashboard/#/jobs/${job.id}`);
    await expect.poll(() => page.locator("#job-status").textContent()).toBe("succeeded");
    const redeliver = page.getByRole("button", { name: "Redeliver webhook" });
    await expect.poll(() => redeliver.isDisabled()).toBe(true);
    expect(await redeliver.getAttribute("title")).toContain("job.succeeded");
    expect(await page.locator("#job-params").textContent()).toContain("webhook eventsjob.failed");
    await page.screenshot({ path: join(OUT, "job-no-terminal-event.png"), fullPage: true });
  });

  it("says there is no such job for an id the key does not have (or no longer has), and stops asking for it", async () => {
    const asks = countRequests(page, (r) => r.url().includes("/v1/jobs/run_"));
    await page.goto(`${gw.url}/dashboard/#/jobs/run_${"a".repeat(40)}`);
    await expect.poll(() => textOf(page, "#job-error")).toBe("No such job for this API key.");
    const after = asks.sent;
    // Past two refresh periods: no more asks, and no refresh failure said beside the answer.
    await page.waitForTimeout(5_000);
    expect(asks.sent).toBe(after);
    expect(await textOf(page, "#status")).toBe("");
    expect(pageErrors).toEqual([]);
  });

  it("says there is no such job for an address whose id does not decode", async () => {
    await page.goto(`${gw.url}/dashboard/#/jobs/%E0%A4%A`);
    await expect.poll(() => textOf(page, "#job-error")).toBe("No such job for this API key.");
    expect(await page.locator("#view-job").isVisible()).toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it("keeps long values and a receiver's one-line error page within the window, on a desktop and on a phone", async () => {
    const loud = await startReceiver({ secrets: [SECRET], answer: () => ({ status: 401, body: `<html><body>${"<p>signature verification failed for this payload</p>".repeat(40)}</body></html>` }) });
    const job = await submit({ track_id: `order-${"9f8e7d6c5b4a".repeat(20)}`, webhook: `${loud.url}/hook` });
    await waitForJob(client, job.id);
    await expect.poll(async () => ((await (await client.get(`/v1/jobs/${job.id}/deliveries`)).json()) as { data: unknown[] }).data.length, { timeout: 20_000 }).toBeGreaterThan(0);
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(`${gw.url}/dashboard/#/jobs`);
      await page.locator("#jobs-body tr").first().waitFor();
      expect(await page.evaluate<number>("document.documentElement.scrollWidth"), `jobs list at ${width} px`).toBeLessThanOrEqual(width);
      // A phone shows each job's status and track id without scrolling sideways.
      const row = page.locator("#jobs-body tr").first();
      for (const cell of ["td:nth-child(3)", "td:nth-child(5)"]) expect(await row.locator(cell).evaluate((td: { getBoundingClientRect(): { right: number } }) => td.getBoundingClientRect().right), `${cell} at ${width} px`).toBeLessThanOrEqual(width);
      await page.screenshot({ path: join(OUT, `jobs-${width}.png`) });
      await page.goto(`${gw.url}/dashboard/#/jobs/${job.id}`);
      await page.locator("#job-deliveries details summary").first().click();
      expect(await page.evaluate<number>("document.documentElement.scrollWidth"), `job page at ${width} px`).toBeLessThanOrEqual(width);
      await page.screenshot({ path: join(OUT, `long-values-${width}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    await loud.close();
  });

  it("sends a test webhook and shows what the receiver said", async () => {
    // A receiver of its own: job webhooks still arriving at the other one cannot take its scripted answer.
    const own = await startReceiver({ secrets: [SECRET] });
    own.script([{ status: 200, body: "receiver says hi" }]);
    await page.getByRole("link", { name: "Test webhook" }).click();
    await page.getByLabel(/Receiver URL/).fill(`${own.url}/test-from-inspector`);
    const sends = countRequests(page, (r) => r.url().endsWith("/v1/webhooks/test"));
    // A double click sends one event.
    await page.getByRole("button", { name: "Send test webhook" }).dblclick();
    await page.getByRole("heading", { name: "Receiver answered 200" }).waitFor();
    await expect.poll(() => sends.answered === sends.sent).toBe(true);
    expect(sends.sent).toBe(1);
    expect(await page.locator("#webhook-result pre").textContent()).toBe("receiver says hi");
    expect(own.deliveries).toHaveLength(1);
    // The signed timestamp in unix seconds, and readable.
    expect(await page.locator("#webhook-result dd").nth(4).textContent()).toMatch(/^\d+ \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\)$/);
    expect(own.deliveries[0]?.verified).toEqual([true]);
    expect((own.deliveries[0]?.json as { type: string }).type).toBe("webhook.test");
    await page.screenshot({ path: join(OUT, "webhook-test.png"), fullPage: true });
    await own.close();
  });

  it("keeps nothing of one tenant after sign-out: the next key starts on page 1 with no filters and none of the first's rows", async () => {
    for (let i = 0; i < 11; i++) expect((await client.post("/v1/jobs", { type: "txt2img", prompt: "filler", width: 64, height: 64, steps: 1, track_id: "inspector-many" })).status).toBe(202);
    const theirs = (await (await api(gw.url, "sk_other").post("/v1/jobs", { type: "txt2img", prompt: "theirs", width: 64, height: 64, steps: 1 })).json()) as JobView;
    await page.getByRole("link", { name: "Backends" }).click();
    await page.locator("#backends-body tr").first().waitFor();
    await page.getByRole("link", { name: "Jobs" }).click();
    await page.getByLabel("Track id").fill("inspector-many");
    await page.getByLabel("Per page").selectOption("10");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect.poll(() => page.locator("#page-next").isEnabled(), { timeout: 10_000 }).toBe(true);
    await page.getByRole("button", { name: "Next page" }).click();
    await expect.poll(() => page.locator("#jobs-body tr").count(), { timeout: 10_000 }).toBe(1);
    expect(await page.locator("#page-no").textContent()).toBe("Page 2");

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    // Nothing read with the first key is left in the page, shown or not.
    expect(await page.locator("#jobs-body tr").count()).toBe(0);
    expect(await page.locator("#backends-body tr").count()).toBe(0);
    expect(await page.locator("#webhook-result").textContent()).toBe("");
    expect(await page.getByLabel("Track id").inputValue()).toBe("");
    expect(await page.getByLabel("Per page").inputValue()).toBe("20");

    // The second tenant's list is held back, so what the page shows before it comes is seen.
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const asked: URL[] = [];
    const list = (url: URL) => url.pathname === "/v1/jobs" && url.searchParams.get("limit") !== "1";
    await page.route(list, async (r) => {
      asked.push(new URL(r.request().url()));
      await held;
      await r.continue();
    });
    try {
      await page.getByLabel("API key").fill("sk_other");
      await page.keyboard.press("Enter");
      await page.getByRole("heading", { name: "Jobs" }).waitFor();
      await expect.poll(() => asked.length).toBeGreaterThan(0);
      expect(await page.locator("#page-no").textContent()).toBe("Page 1");
      expect(await page.locator("#jobs-body tr").count()).toBe(0);
      expect(asked[0]?.searchParams.has("cursor")).toBe(false);
      expect(asked[0]?.searchParams.has("track_id")).toBe(false);
    } finally {
      release();
      // Each held request is let through before the route goes.
      await page.unrouteAll({ behavior: "wait" });
    }
    await page.locator(`tr[data-job="${theirs.id}"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator("#jobs-body tr").count()).toBe(1);
  });
});
