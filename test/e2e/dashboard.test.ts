/**
 * The job inspector (/dashboard) in real headless Chromium against a real gateway, simulator and
 * webhook receiver: what a person signing in with an API key sees and can do.
 * Screenshots go to test-results/dashboard/.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
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
      await page.getByRole("button", { name: "Cancel job" }).click();
      await expect.poll(() => page.locator("#job-status").textContent()).toBe("canceled");
      expect((await waitForJob(client, job.id)).status).toBe("canceled");
    } finally {
      await sim.config({ msPerImage: 300 });
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

  it("offers no redelivery for an ended job that has no webhook", async () => {
    const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "no hook", width: 64, height: 64, steps: 1 });
    const job = (await res.json()) as JobView;
    await waitForJob(client, job.id);
    await page.goto(`${gw.url}/dashboard/#/jobs/${job.id}`);
    await expect.poll(() => page.locator("#job-status").textContent()).toContain("succeeded");
    expect(await page.getByRole("button", { name: "Redeliver webhook" }).isDisabled()).toBe(true);
    expect(await page.locator("#job-params").textContent()).toContain("none");
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
    await page.getByRole("button", { name: "Send test webhook" }).click();
    await page.getByRole("heading", { name: "Receiver answered 200" }).waitFor();
    expect(await page.locator("#webhook-result pre").textContent()).toBe("receiver says hi");
    expect(own.deliveries).toHaveLength(1);
    expect(own.deliveries[0]?.verified).toEqual([true]);
    expect((own.deliveries[0]?.json as { type: string }).type).toBe("webhook.test");
    await page.screenshot({ path: join(OUT, "webhook-test.png"), fullPage: true });
    await own.close();
  });
});
