// The jobs list: the filters of GET /v1/jobs, paging by cursor, a refresh every few seconds.
import { api, every } from "./api.js";
import { $, badge, changed, h, stableUrl, when } from "./dom.js";

const LIST_REFRESH_MS = 3000;

/** The filters applied and the cursor of each page read so far (the last one is shown). */
let list = { filters: {}, cursors: [null] };

/** A new key starts on the first page with no filters: another tenant's cursor means nothing to it. */
export function forgetList() {
  list = { filters: {}, cursors: [null] };
  $("filters").reset();
  $("jobs-body").replaceChildren();
  $("jobs-empty").hidden = true;
}

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

/** The filter form and pager; `reload` shows the list again as they now say. */
export function listControls(reload) {
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    readFilters();
    reload();
  });
  // A reset fires before the fields are cleared; forgetList's reset at sign-out needs no reload.
  $("filters").addEventListener("reset", () => setTimeout(() => {
    readFilters();
    if (!$("view-jobs").hidden) reload();
  }));
  $("page-first").addEventListener("click", () => {
    list.cursors = [null];
    reload();
  });
  $("page-prev").addEventListener("click", () => {
    if (list.cursors.length > 1) list.cursors.pop();
    reload();
  });
  $("page-next").addEventListener("click", () => {
    if (list.next) list.cursors.push(list.next);
    reload();
  });
}

/** One thumbnail per output (a job has up to 4); several share one 64 px square, two a row, so no row grows taller. */
function thumbnails(job) {
  const n = job.output.length;
  if (n === 0) return h("span", { class: "sr-only" }, "no output yet");
  const size = n === 1 ? 64 : 31;
  return h("div", { class: "thumbs" }, ...job.output.map((o, i) => h("img", { src: stableUrl(o.url), alt: `output ${i + 1} of ${n} of ${job.id}`, loading: "lazy", width: size, height: size })));
}

// The cells carry their column's name, which a phone's stacked rows show in place of the header.
function jobRow(job) {
  return h(
    "tr",
    { "data-job": job.id },
    h("td", { class: "thumb" }, thumbnails(job)),
    h("td", { class: "id" }, h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, h("code", {}, job.id))),
    h("td", { class: "status", "data-label": "Status" }, badge(job.status)),
    h("td", { class: "type", "data-label": "Type" }, job.type),
    h("td", { class: "long track", "data-label": "Track id" }, job.track_id ?? "—"),
    h("td", { class: "created", "data-label": "Created" }, when(job.created_at)),
    h("td", { class: "backend", "data-label": "Backend" }, job.backend ?? "—"),
  );
}

export function jobsView() {
  const cursor = list.cursors[list.cursors.length - 1];
  $("page-no").textContent = `Page ${list.cursors.length}`;
  $("page-prev").disabled = list.cursors.length < 2;
  $("page-first").disabled = list.cursors.length < 2;
  const shown = {};
  return every(LIST_REFRESH_MS, async (signal) => {
    const page = await api(`/v1/jobs?${filterQuery(cursor)}`, { signal });
    list.next = page.next_cursor;
    $("page-next").disabled = !page.next_cursor;
    if (!changed(shown, page.data.map((j) => [j.id, j.status, j.output.length, j.backend]))) return;
    $("jobs-body").replaceChildren(...page.data.map(jobRow));
    $("jobs-empty").hidden = page.data.length > 0;
  });
}
