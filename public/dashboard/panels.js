// The backends panel and the test-webhook form.
import { api, every } from "./api.js";
import { $, badge, busy, h, when } from "./dom.js";

const BACKENDS_REFRESH_MS = 5000;

/** Empties what the last key was shown here: its backends and its receiver's answer. */
export function forgetPanels() {
  $("backends-body").replaceChildren();
  $("webhook-result").replaceChildren();
  $("webhook-url").value = "";
}

// The cells carry their column's name, which a phone's stacked rows show in place of the header.
const backendRow = (b) =>
  h(
    "tr",
    {},
    h("th", { scope: "row" }, b.name),
    h("td", { "data-label": "Kind" }, b.kind),
    h("td", { "data-label": "Slots in use" }, `${b.active} / ${b.max_concurrency}`),
    h("td", { "data-label": "Queue" }, b.waiting),
    // A half-open circuit keeps the open_until it passed: only an open one ends at it.
    h("td", { "data-label": "Circuit" }, badge(b.circuit), b.circuit === "open" && b.open_until ? ` until ${when(b.open_until)}` : ""),
    h("td", { "data-label": "Recent jobs" }, b.recent.jobs),
    h("td", { "data-label": "Success rate" }, b.recent.success_rate === null ? "—" : `${Math.round(b.recent.success_rate * 100)}%`),
    h("td", { "data-label": "Run time p50" }, b.recent.run_ms_p50 === null ? "—" : `${b.recent.run_ms_p50} ms`),
    h("td", { "data-label": "Models" }, b.models.length ? b.models.join(", ") : "any"),
  );

export const backendsView = () =>
  every(BACKENDS_REFRESH_MS, async (signal) => {
    const { data } = await api("/v1/backends", { signal });
    $("backends-body").replaceChildren(...data.map(backendRow));
  });

export const webhooksView = () => () => {};

/** Unix seconds as sent in the header, and readable beside them. */
const timestamp = (s) => (/^\d+$/.test(s ?? "") ? `${s} (${when(new Date(Number(s) * 1000).toISOString())})` : s);

function showAnswer(r) {
  $("webhook-result").replaceChildren(
    h("h3", {}, r.status_code === null ? "Not delivered" : `Receiver answered ${r.status_code}`),
    h(
      "dl",
      { class: "params" },
      ...[
        ["webhook-id", r.webhook_id],
        ["status", r.status_code ?? "—"],
        ["error", r.error ?? "—"],
        ["duration", `${r.duration_ms} ms`],
        ["webhook-timestamp", timestamp(r.signature_headers["webhook-timestamp"])],
        ["webhook-signature", r.signature_headers["webhook-signature"] || "(no secret configured)"],
      ].flatMap(([k, v]) => [h("dt", {}, k), h("dd", { class: "mono" }, String(v))]),
    ),
    h("h3", {}, "Response body"),
    h("pre", {}, r.response_body ?? "—"),
  );
}

async function sendTest(url) {
  $("webhook-result").replaceChildren(h("p", {}, "Sending…"));
  try {
    showAnswer(await api("/v1/webhooks/test", { method: "POST", body: JSON.stringify(url ? { url } : {}) }));
  } catch (err) {
    const message =
      err.status === 422 && !url ? "Enter a receiver URL: this API key's tenant has no default webhook." : `${err.message}${err.status === 422 ? " (check the URL: it must be one the gateway may call)" : ""}`;
    $("webhook-result").replaceChildren(h("p", { class: "error", role: "alert" }, `Not sent: ${message}`));
  }
}

$("webhook-form").addEventListener("submit", (e) => {
  e.preventDefault();
  // Each event is sent once: a second click while one is on its way sends nothing.
  const button = $("webhook-form").querySelector("button");
  if (button.disabled) return;
  busy(button, () => sendTest($("webhook-url").value.trim()));
});
// An answer about another URL is not left standing beside the one being typed.
$("webhook-url").addEventListener("input", () => $("webhook-result").replaceChildren());
