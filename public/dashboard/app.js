// The job inspector: a client of the /v1 API with the signed-in key, nothing more. The key lives
// in sessionStorage and travels only in the Authorization header. Every value from the API is
// put in the page as text (textContent), never as markup: track ids and URLs are client data.

const KEY_SLOT = "easel.apiKey";
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const LIST_REFRESH_MS = 3000;
const JOB_REFRESH_MS = 2000;
const BACKENDS_REFRESH_MS = 5000;

const $ = (id) => document.getElementById(id);
const key = () => sessionStorage.getItem(KEY_SLOT);

/** Builds an element; children are nodes or strings (strings become text, never HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** The line under the navigation: what an action did (`ok`), or what went wrong (`bad`), until the next one. */
const say = (text, tone = "") => {
  $("status").textContent = text;
  $("status").className = `status ${tone}`;
};
const when = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "—");
/** Output links are re-signed on every read; the first link seen for a file is kept, so images are not fetched again. */
const links = new Map();
const stableUrl = (url) => {
  const file = url.split("?")[0];
  if (!links.has(file)) links.set(file, url);
  return links.get(file);
};

/** Re-renders only when what is shown changed, so a refresh does not steal keyboard focus or reload images. */
function changed(holder, value) {
  const text = JSON.stringify(value);
  if (holder.last === text) return false;
  holder.last = text;
  return true;
}

const badge = (value) => h("span", { class: `badge ${value}` }, value.replace("_", " "));

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { authorization: `Bearer ${key()}`, ...(init.body ? { "content-type": "application/json" } : {}), ...init.headers } });
  const body = await res.json().catch(() => null);
  if (res.status === 401) {
    signOut("Your API key was refused: sign in again.");
    throw new ApiError(401, body);
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

// ---- routing: #/jobs, #/jobs/<id>, #/backends, #/webhooks ----

let stopView = () => {};

function show(view) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== `view-${view}`;
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.getAttribute("href") === `#/${view === "job" ? "jobs" : view}`;
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function route() {
  stopView();
  stopView = () => {};
  if (!key()) {
    $("nav").hidden = true;
    show("signin");
    $("api-key").focus();
    return;
  }
  $("nav").hidden = false;
  const [, section, id] = location.hash.split("/");
  if (section === "jobs" && id) stopView = jobView(decodeURIComponent(id));
  else if (section === "backends") stopView = backendsView();
  else if (section === "webhooks") stopView = webhooksView();
  else stopView = jobsView();
}

/** Runs `tick` now and every `ms` until the view is left; overlapping runs are skipped. */
function every(ms, tick) {
  let busy = false;
  let stopped = false;
  const run = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      await tick();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) say(`Could not refresh: ${err.message}`, "bad");
    } finally {
      busy = false;
    }
  };
  run();
  const timer = setInterval(run, ms);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

// ---- sign in ----

function signOut(message = "Signed out.") {
  sessionStorage.removeItem(KEY_SLOT);
  say(message);
  if (location.hash !== "#/jobs") location.hash = "#/jobs";
  else route();
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const candidate = $("api-key").value.trim();
  $("signin-error").textContent = "";
  const res = await fetch("/v1/jobs?limit=1", { headers: { authorization: `Bearer ${candidate}` } }).catch(() => null);
  if (!res || !res.ok) {
    $("signin-error").textContent = res?.status === 401 ? "That API key is not known." : "The gateway could not be reached.";
    return;
  }
  sessionStorage.setItem(KEY_SLOT, candidate);
  $("api-key").value = "";
  say("Signed in.");
  route();
});
$("sign-out").addEventListener("click", () => signOut());

// ---- the jobs list ----

const list = { filters: {}, cursors: [null] };

function filterQuery(cursor) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(list.filters)) if (v) q.set(k, v);
  if (cursor) q.set("cursor", cursor);
  return q.toString();
}

function readFilters() {
  const form = new FormData($("filters"));
  const iso = (v) => (v ? new Date(`${v}Z`).toISOString() : "");
  list.filters = {
    status: form.get("status"),
    type: form.get("type"),
    track_id: String(form.get("track_id") ?? "").trim(),
    created_after: iso(form.get("created_after")),
    created_before: iso(form.get("created_before")),
    limit: form.get("limit"),
  };
  list.cursors = [null];
}

$("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  readFilters();
  route();
});
$("filters").addEventListener("reset", () => setTimeout(() => {
  readFilters();
  route();
}));
$("page-first").addEventListener("click", () => {
  list.cursors = [null];
  route();
});
$("page-prev").addEventListener("click", () => {
  if (list.cursors.length > 1) list.cursors.pop();
  route();
});
$("page-next").addEventListener("click", () => {
  if (list.next) list.cursors.push(list.next);
  route();
});

function jobRow(job) {
  const first = job.output[0];
  const thumb = first ? h("img", { src: stableUrl(first.url), alt: `output of ${job.id}`, loading: "lazy", width: 64, height: 64 }) : h("span", { class: "sr-only" }, "no output yet");
  return h(
    "tr",
    { "data-job": job.id },
    h("td", { class: "thumb" }, thumb),
    h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, h("code", {}, job.id))),
    h("td", {}, badge(job.status)),
    h("td", {}, job.type),
    h("td", { class: "long" }, job.track_id ?? "—"),
    h("td", {}, when(job.created_at)),
    h("td", {}, job.backend ?? "—"),
  );
}

function jobsView() {
  show("jobs");
  $("jobs-title").focus();
  const cursor = list.cursors[list.cursors.length - 1];
  $("page-no").textContent = `Page ${list.cursors.length}`;
  $("page-prev").disabled = list.cursors.length < 2;
  $("page-first").disabled = list.cursors.length < 2;
  const shown = {};
  return every(LIST_REFRESH_MS, async () => {
    const page = await api(`/v1/jobs?${filterQuery(cursor)}`);
    list.next = page.next_cursor;
    $("page-next").disabled = !page.next_cursor;
    if (!changed(shown, page.data.map((j) => [j.id, j.status, j.output.length, j.backend]))) return;
    $("jobs-body").replaceChildren(...page.data.map(jobRow));
    $("jobs-empty").hidden = page.data.length > 0;
  });
}

// ---- one job ----

function jobView(id) {
  show("job");
  $("job-title").textContent = `Job ${id}`;
  $("job-title").focus();
  for (const el of ["job-images", "job-params", "job-events", "job-attempts", "job-deliveries"]) $(el).replaceChildren();
  $("job-error").textContent = "";
  $("view-job").classList.remove("missing");
  const events = new Map();
  const abort = new AbortController();
  const shownImages = {};
  const shownDeliveries = {};
  const shownStatus = {};
  let job;

  const renderJob = () => {
    $("job-status").replaceChildren(badge(job.status));
    $("job-status").className = "";
    const fraction = job.progress?.fraction;
    const bar = $("job-progress");
    if (job.status === "succeeded") bar.value = 1;
    else if (typeof fraction === "number") bar.value = fraction;
    else if (TERMINAL.has(job.status)) bar.value = 0;
    else bar.removeAttribute("value");
    $("job-progress-text").textContent = job.status === "succeeded" ? "100%" : typeof fraction === "number" ? `${Math.round(fraction * 100)}%${job.progress.node != null ? ` (node ${job.progress.node})` : ""}${job.progress.eta_s != null ? `, about ${job.progress.eta_s} s left` : ""}` : job.status === "running" ? "running…" : "";
    $("job-cancel").disabled = TERMINAL.has(job.status);
    // Only an ended job that has a webhook has an event to send again.
    $("job-redeliver").disabled = !TERMINAL.has(job.status) || !job.parameters.webhook;
    $("job-error").textContent = job.error ? `${job.error.code}: ${job.error.message}` : "";
    if (changed(shownImages, job.output.length)) $("job-images").replaceChildren(
      ...job.output.map((o, i) => h("figure", {}, h("a", { href: stableUrl(o.url) }, h("img", { src: stableUrl(o.url), alt: `output ${i + 1} of ${job.output.length}`, width: o.width, height: o.height })), h("figcaption", {}, `${o.width}×${o.height}, ${o.node_id !== undefined ? `node ${o.node_id}` : `seed ${o.seed ?? "—"}`}`))),
    );
    const p = job.parameters;
    const params = {
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
      "track id": job.track_id ?? "—",
      backend: job.backend ?? "—",
      created: when(job.created_at),
      started: when(job.started_at),
      completed: when(job.completed_at),
      "queue time": `${job.metrics.queue_ms} ms`,
      "run time": `${job.metrics.run_ms} ms`,
    };
    $("job-params").replaceChildren(...Object.entries(params).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
  };

  const summary = (e) => {
    const d = e.data ?? {};
    if (e.type === "job.progress" && typeof d.fraction === "number") return `${Math.round(d.fraction * 100)}%`;
    const parts = Object.entries(d).filter(([, v]) => v !== null && typeof v !== "object").map(([k, v]) => `${k}: ${v}`);
    if (d.error) parts.push(`${d.error.code}: ${d.error.message}`);
    return parts.join(", ");
  };

  const renderEvents = () => {
    const sorted = [...events.values()].sort((a, b) => a.seq - b.seq);
    $("job-events").replaceChildren(...sorted.map((e) => h("li", {}, h("time", { datetime: e.at }, when(e.at)), h("strong", {}, e.type), " ", summary(e))));
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
    $("job-attempts").replaceChildren(...[...attempts.values()].map((a) => h("tr", {}, h("td", {}, a.n), h("td", {}, a.backend ?? "—"), h("td", {}, when(a.started)), h("td", {}, a.outcome))));
    const progress = sorted.filter((e) => e.type === "job.progress").at(-1);
    if (job && !TERMINAL.has(job.status) && progress) {
      job.progress = progress.data;
      renderJob();
    }
  };

  const addEvents = (list) => {
    const before = events.size;
    for (const e of list) events.set(e.seq, e);
    if (events.size !== before) renderEvents();
  };

  const renderDeliveries = (rows) => {
    $("job-no-deliveries").hidden = rows.length > 0;
    if (!changed(shownDeliveries, rows)) return;
    // A retry time belongs to the latest attempt of its event; earlier ones were followed already.
    const latest = new Map(rows.map((d) => [d.event_id, d.attempt]));
    $("job-deliveries").replaceChildren(
      ...rows.map((d) =>
        h(
          "tr",
          {},
          h("td", {}, d.type),
          h("td", {}, d.attempt),
          h("td", { class: "mono" }, d.url),
          h("td", {}, when(d.started_at)),
          h("td", {}, d.status_code ?? d.error ?? "—"),
          h("td", {}, `${d.duration_ms} ms`),
          h("td", {}, d.response_body ? h("details", {}, h("summary", {}, "body"), h("pre", {}, d.response_body)) : "—"),
          h("td", {}, latest.get(d.event_id) === d.attempt ? when(d.next_attempt_at) : "—"),
        ),
      ),
    );
  };

  /** The live timeline: Server-Sent Events read with fetch (EventSource cannot send the key). */
  const stream = async () => {
    try {
      const res = await fetch(`/v1/jobs/${encodeURIComponent(id)}/events`, { headers: { authorization: `Bearer ${key()}`, accept: "text/event-stream" }, signal: abort.signal });
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
      // Left the page, or the stream broke: the periodic refresh below keeps the timeline current.
    }
  };

  $("job-cancel").onclick = async () => {
    try {
      job = await api(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
      renderJob();
      say("Job canceled.", "ok");
    } catch (err) {
      say(`Cancel failed: ${err.message}`, "bad");
    }
  };
  $("job-redeliver").onclick = async () => {
    try {
      await api(`/v1/jobs/${encodeURIComponent(id)}/deliveries/redeliver`, { method: "POST" });
      say("Webhook queued for redelivery.", "ok");
    } catch (err) {
      say(`Redeliver failed: ${err.message}`, "bad");
    }
  };

  stream();
  const stop = every(JOB_REFRESH_MS, async () => {
    try {
      job = await api(`/v1/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err.status === 404) {
        // Nothing of a job to show: only the message and the way back.
        $("job-error").textContent = "No such job for this API key.";
        $("view-job").classList.add("missing");
      }
      throw err;
    }
    renderJob();
    const statusChanged = changed(shownStatus, job.status);
    const [ev, del] = await Promise.all([api(`/v1/jobs/${encodeURIComponent(id)}/events`), api(`/v1/jobs/${encodeURIComponent(id)}/deliveries`)]);
    addEvents(ev.data);
    // Attempts are shown with the job's outcome once it ended.
    if (statusChanged) renderEvents();
    renderDeliveries(del.data);
  });
  return () => {
    stop();
    abort.abort();
  };
}

// ---- backends ----

function backendsView() {
  show("backends");
  $("backends-title").focus();
  return every(BACKENDS_REFRESH_MS, async () => {
    const { data } = await api("/v1/backends");
    $("backends-body").replaceChildren(
      ...data.map((b) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, b.name),
          h("td", {}, b.kind),
          h("td", {}, `${b.active} / ${b.max_concurrency}`),
          h("td", {}, b.waiting),
          h("td", {}, badge(b.circuit), b.open_until ? ` until ${when(b.open_until)}` : ""),
          h("td", {}, b.recent.jobs),
          h("td", {}, b.recent.success_rate === null ? "—" : `${Math.round(b.recent.success_rate * 100)}%`),
          h("td", {}, b.recent.run_ms_p50 === null ? "—" : `${b.recent.run_ms_p50} ms`),
          h("td", {}, b.models.length ? b.models.join(", ") : "any"),
        ),
      ),
    );
  });
}

// ---- test webhook ----

function webhooksView() {
  show("webhooks");
  $("webhooks-title").focus();
  return () => {};
}

$("webhook-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const url = $("webhook-url").value.trim();
  const out = $("webhook-result");
  out.replaceChildren(h("p", {}, "Sending…"));
  try {
    const r = await api("/v1/webhooks/test", { method: "POST", body: JSON.stringify(url ? { url } : {}) });
    out.replaceChildren(
      h("h3", {}, r.status_code === null ? "Not delivered" : `Receiver answered ${r.status_code}`),
      h(
        "dl",
        { class: "params" },
        ...[
          ["webhook-id", r.webhook_id],
          ["status", r.status_code ?? "—"],
          ["error", r.error ?? "—"],
          ["duration", `${r.duration_ms} ms`],
          ["webhook-timestamp", r.signature_headers["webhook-timestamp"]],
          ["webhook-signature", r.signature_headers["webhook-signature"] || "(no secret configured)"],
        ].flatMap(([k, v]) => [h("dt", {}, k), h("dd", { class: "mono" }, String(v))]),
      ),
      h("h3", {}, "Response body"),
      h("pre", {}, r.response_body ?? "—"),
    );
  } catch (err) {
    const message =
      err.status === 422 && !url ? "Enter a receiver URL: this API key's tenant has no default webhook." : `${err.message}${err.status === 422 ? " (check the URL: it must be one the gateway may call)" : ""}`;
    out.replaceChildren(h("p", { class: "error", role: "alert" }, `Not sent: ${message}`));
  }
});
// An answer about another URL is not left standing beside the one being typed.
$("webhook-url").addEventListener("input", () => $("webhook-result").replaceChildren());

window.addEventListener("hashchange", () => {
  say("");
  route();
});
if (!location.hash) history.replaceState(null, "", "#/jobs");
route();
