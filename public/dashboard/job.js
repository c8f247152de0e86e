// One job: images, parameters, the live timeline, backend attempts, webhook deliveries, Cancel and Redeliver.
import { api, every, key } from "./api.js";
import { $, allow, badge, busy, changed, h, say, stableUrl, when } from "./dom.js";

const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const ENDINGS = new Set(["job.succeeded", "job.failed", "job.canceled"]);
const JOB_REFRESH_MS = 2000;

/** Empties every part of the job view, so nothing of one job (or one key) is seen beside another. */
export function forgetJob() {
  for (const el of ["job-images", "job-params", "job-events", "job-attempts", "job-deliveries", "job-status", "job-progress-text", "job-error"]) $(el).replaceChildren();
  $("job-progress").removeAttribute("value");
  $("view-job").classList.remove("missing");
}

/** Nothing of a job to show: only the message and the way back. */
function missing() {
  $("job-error").textContent = "No such job for this API key.";
  $("view-job").classList.add("missing");
}

const progressText = (job) => {
  const p = job.progress;
  if (job.status === "succeeded") return "100%";
  if (typeof p?.fraction !== "number") return job.status === "running" ? "running…" : "";
  return `${Math.round(p.fraction * 100)}%${p.node != null ? ` (node ${p.node})` : ""}${p.eta_s != null ? `, about ${p.eta_s} s left` : ""}`;
};

/** Why Redeliver cannot work now (the API would answer 409), or "" when it can. */
function noRedelivery(job) {
  const p = job.parameters;
  if (!TERMINAL.has(job.status)) return "The job has not ended yet.";
  if (!p.webhook) return "This job has no webhook.";
  // The gateway queues an ending's event only when webhook_events lists it; there is nothing else to send again.
  if (!p.webhook_events.includes(`job.${job.status}`)) return `This job's webhook_events leave out job.${job.status}: there is no event to send again.`;
  return "";
}

function parameters(job) {
  const p = job.parameters;
  return {
    type: job.type,
    ...(p.prompt ? { prompt: p.prompt } : {}),
    ...(p.negative_prompt ? { "negative prompt": p.negative_prompt } : {}),
    ...(job.type === "workflow" ? {} : { size: `${p.width}×${p.height}`, steps: p.steps, "guidance scale": p.guidance_scale, images: p.samples }),
    ...(p.sampler ? { sampler: p.sampler } : {}),
    ...(p.strength !== null ? { strength: p.strength } : {}),
    ...(p.scale !== null ? { scale: p.scale } : {}),
    model: job.model ?? "default",
    seed: job.seed ?? "—",
    webhook: p.webhook ?? "none",
    ...(p.webhook ? { "webhook events": p.webhook_events.join(", ") } : {}),
    "track id": job.track_id ?? "—",
    backend: job.backend ?? "—",
    created: when(job.created_at),
    started: when(job.started_at),
    completed: when(job.completed_at),
    "queue time": `${job.metrics.queue_ms} ms`,
    "run time": `${job.metrics.run_ms} ms`,
  };
}

function renderImages(job) {
  const none = job.output.length === 0;
  $("job-images-title").hidden = none;
  $("job-images").hidden = none;
  $("job-images").replaceChildren(
    ...job.output.map((o, i) => h("figure", {}, h("a", { href: stableUrl(o.url) }, h("img", { src: stableUrl(o.url), alt: `output ${i + 1} of ${job.output.length}`, width: o.width, height: o.height })), h("figcaption", {}, `${o.width}×${o.height}, ${o.node_id !== undefined ? `node ${o.node_id}` : `seed ${o.seed ?? "—"}`}`))),
  );
}

const summary = (e) => {
  const d = e.data ?? {};
  if (e.type === "job.progress" && typeof d.fraction === "number") return `${Math.round(d.fraction * 100)}%`;
  const parts = Object.entries(d).filter(([, v]) => v !== null && typeof v !== "object").map(([k, v]) => `${k}: ${v}`);
  if (d.error) parts.push(`${d.error.code}: ${d.error.message}`);
  return parts.join(", ");
};

/** Consecutive job.progress readings share one row that grows (a long job has one a second); every other event keeps its own. */
function timelineRows(sorted) {
  const rows = [];
  for (const e of sorted) {
    const last = rows.at(-1);
    if (e.type === "job.progress" && last?.[0].type === "job.progress") last.push(e);
    else rows.push([e]);
  }
  return rows;
}

const timelineRow = (group) => {
  const [first, last] = [group[0], group.at(-1)];
  const text = group.length === 1 ? summary(first) : `${summary(first)} → ${summary(last)} (${group.length} readings)`;
  return h("li", {}, h("time", { datetime: first.at }, when(first.at)), h("strong", {}, first.type), " ", text);
};

function attemptRows(sorted, job) {
  const attempts = new Map();
  for (const e of sorted) {
    const n = e.data?.attempt;
    if (typeof n !== "number") continue;
    const a = attempts.get(n) ?? { n, backend: e.data.backend, started: e.at, outcome: "running" };
    if (e.type === "attempt.failed") a.outcome = `failed: ${e.data.message ?? e.data.code ?? ""}`;
    if (e.type === "attempt.lost") a.outcome = "lost in a restart";
    if (e.type === "attempt.submitted") a.outcome = "submitted, waiting for the backend";
    attempts.set(n, a);
  }
  if (job && TERMINAL.has(job.status)) {
    for (const a of attempts.values()) if (a.outcome.startsWith("running") || a.outcome.startsWith("submitted")) a.outcome = job.status === "succeeded" && a.backend === job.backend ? "succeeded" : job.status;
  }
  return [...attempts.values()].map((a) => h("tr", {}, h("td", {}, a.n), h("td", {}, a.backend ?? "—"), h("td", {}, when(a.started)), h("td", {}, a.outcome)));
}

// The cells carry their column's name, which a phone's stacked rows show in place of the header.
function deliveryRows(rows) {
  // A retry time belongs to the latest attempt of its event; earlier ones were followed already.
  const latest = new Map(rows.map((d) => [d.event_id, d.attempt]));
  return rows.map((d) =>
    h(
      "tr",
      {},
      h("td", {}, d.type),
      h("td", { "data-label": "Attempt" }, d.attempt),
      h("td", { class: "mono", "data-label": "URL" }, d.url),
      h("td", { "data-label": "Sent" }, when(d.started_at)),
      h("td", { "data-label": "Answer" }, d.status_code ?? d.error ?? "—"),
      h("td", { "data-label": "Time" }, `${d.duration_ms} ms`),
      h("td", { "data-label": "Response" }, d.response_body ? h("details", {}, h("summary", {}, "body"), h("pre", {}, d.response_body)) : "—"),
      h("td", { "data-label": "Next retry" }, latest.get(d.event_id) === d.attempt ? when(d.next_attempt_at) : "—"),
    ),
  );
}

/** The live timeline: Server-Sent Events read with fetch (EventSource cannot send the key). */
async function stream(path, signal, addEvents) {
  try {
    const res = await fetch(path, { headers: { authorization: `Bearer ${key()}`, accept: "text/event-stream" }, signal });
    if (!res.ok || !res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (data) addEvents([JSON.parse(data)]);
      }
    }
  } catch {
    // Left the page, or the stream broke: the periodic refresh keeps the timeline current.
  }
}

/** `id` is null when the address held no readable job id (a malformed escape): no job has it. */
export function jobView(id, shownId) {
  $("job-title").textContent = `Job ${shownId}`;
  forgetJob();
  if (id === null) {
    missing();
    return () => {};
  }
  const base = `/v1/jobs/${encodeURIComponent(id)}`;
  const events = new Map();
  const abort = new AbortController();
  const shownImages = {};
  const shownDeliveries = {};
  const shownStatus = {};
  let job;

  const renderJob = () => {
    $("job-status").replaceChildren(badge(job.status));
    const bar = $("job-progress");
    if (job.status === "succeeded") bar.value = 1;
    else if (typeof job.progress?.fraction === "number") bar.value = job.progress.fraction;
    else if (TERMINAL.has(job.status)) bar.value = 0;
    else bar.removeAttribute("value");
    $("job-progress-text").textContent = progressText(job);
    allow($("job-cancel"), !TERMINAL.has(job.status));
    const why = noRedelivery(job);
    allow($("job-redeliver"), !why);
    $("job-redeliver").title = why;
    $("job-error").textContent = job.error ? `${job.error.code}: ${job.error.message}` : "";
    if (changed(shownImages, job.output.length)) renderImages(job);
    $("job-params").replaceChildren(...Object.entries(parameters(job)).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
  };

  const renderEvents = () => {
    const sorted = [...events.values()].sort((a, b) => a.seq - b.seq);
    $("job-events").replaceChildren(...timelineRows(sorted).map(timelineRow));
    $("job-attempts").replaceChildren(...attemptRows(sorted, job));
    const progress = sorted.filter((e) => e.type === "job.progress").at(-1);
    if (job && !TERMINAL.has(job.status) && progress) {
      job.progress = progress.data;
      renderJob();
    }
  };

  // Each read of the job is numbered as it is sent: the answer to a read sent before the one shown
  // is older news (a refresh sent before the end), while a later one may show a job run again (a
  // RunPod retry turns a failed job back into a queued one).
  let sent = 0;
  let shown = 0;
  const read = async (path, opts) => {
    const n = ++sent;
    return { n, fresh: await api(path, opts) };
  };
  const take = ({ n, fresh }) => {
    if (n < shown) return;
    shown = n;
    job = fresh;
    renderJob();
    // Attempts are shown with the job's outcome once it ended.
    if (changed(shownStatus, job.status)) renderEvents();
  };

  /** Reads the job now, outside the periodic refresh; a failure is left to that refresh. */
  const reread = async () => {
    try {
      const answer = await read(base, { signal: abort.signal });
      if (!abort.signal.aborted) take(answer);
    } catch {
      // The next periodic refresh reads it again, and says so if it fails.
    }
  };

  const addEvents = (list) => {
    const before = events.size;
    for (const e of list) events.set(e.seq, e);
    if (events.size === before) return;
    renderEvents();
    // The timeline shows the end at once; the header and buttons follow it, not the next refresh.
    if (job && !TERMINAL.has(job.status) && list.some((e) => ENDINGS.has(e.type))) reread();
  };

  $("job-cancel").onclick = () =>
    busy($("job-cancel"), async () => {
      try {
        take(await read(`${base}/cancel`, { method: "POST" }));
        say("Job canceled.", "ok");
      } catch (err) {
        say(`Cancel failed: ${err.message}`, "bad");
        // Most likely it ended meanwhile: show it as it is now, with Cancel off.
        await reread();
      }
    }, () => job && !TERMINAL.has(job.status));
  $("job-redeliver").onclick = () =>
    busy($("job-redeliver"), async () => {
      try {
        await api(`${base}/deliveries/redeliver`, { method: "POST" });
        say("Webhook queued for redelivery.", "ok");
      } catch (err) {
        say(`Redeliver failed: ${err.message}`, "bad");
      }
    }, () => job && !noRedelivery(job));

  stream(`${base}/events`, abort.signal, addEvents);
  const stop = every(JOB_REFRESH_MS, async (signal) => {
    let answer;
    try {
      answer = await read(base, { signal });
    } catch (err) {
      if (err.status !== 404) throw err;
      // Gone (deleted RETENTION_S after its end) or never this key's: nothing left to refresh.
      missing();
      stop();
      abort.abort();
      return;
    }
    take(answer);
    const [ev, del] = await Promise.all([api(`${base}/events`, { signal }), api(`${base}/deliveries`, { signal })]);
    addEvents(ev.data);
    $("job-no-deliveries").hidden = del.data.length > 0;
    if (changed(shownDeliveries, del.data)) $("job-deliveries").replaceChildren(...deliveryRows(del.data));
  });
  return () => {
    stop();
    abort.abort();
  };
}
