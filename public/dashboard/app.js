// The job inspector: a client of the /v1 API with the signed-in key, nothing more. Every value from
// the API is put in the page as text (textContent), never as markup: track ids and URLs are client data.
// This module signs in and out and routes; each section is a module of its own.
import { drop, keep, key, onRefused, sendable } from "./api.js";
import { $, busy, clearUpdated, forgetLinks, say } from "./dom.js";
import { forgetJob, jobView } from "./job.js";
import { forgetList, jobsView, listControls } from "./jobs.js";
import { backendsView, forgetPanels, webhooksView } from "./panels.js";

// ---- routing: #/jobs, #/jobs/<id>, #/backends, #/webhooks ----

let stopView = () => {};

function show(view) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== `view-${view}`;
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.getAttribute("href") === `#/${view === "job" ? "jobs" : view}`;
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  $(`${view}-title`)?.focus();
}

/** A job id from the address, or null when its escapes do not decode (no job has such an id). */
const decoded = (part) => {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
};

function route() {
  stopView();
  stopView = () => {};
  clearUpdated();
  if (!key()) {
    $("nav").hidden = true;
    show("signin");
    $("api-key").focus();
    return;
  }
  $("nav").hidden = false;
  const [, section, id] = location.hash.split("/");
  if (section === "jobs" && id) {
    show("job");
    stopView = jobView(decoded(id), id);
  } else if (section === "backends" || section === "webhooks") {
    show(section);
    stopView = section === "backends" ? backendsView() : webhooksView();
  } else {
    show("jobs");
    stopView = jobsView();
  }
}

// ---- sign in and out ----

/** Nothing read with the last key stays in the page for the next one: rows, signed links, filters, cursors. */
function forgetTenant() {
  forgetList();
  forgetJob();
  forgetPanels();
  forgetLinks();
}

function signOut(message = "Signed out.") {
  drop();
  forgetTenant();
  // Replaced without a hashchange, whose handler would wipe the message below.
  history.replaceState(null, "", "#/jobs");
  route();
  say(message);
}
onRefused(() => signOut("Your API key was refused: sign in again."));

/** What a refused sign-in means, in the gateway's own words when it gave some. */
async function signInProblem(res) {
  if (res.status === 401) return "That API key is not known.";
  const body = await res.json().catch(() => null);
  const said = body?.error?.message;
  return said ? `The gateway answered ${res.status}: ${said}` : `The gateway answered HTTP ${res.status}.`;
}

async function signIn(candidate) {
  // The field is required, but spaces pass that check and are trimmed away here.
  if (!candidate) return "Enter an API key: the one given is empty.";
  // fetch refuses such a header outright; it could never be a key the gateway knows.
  if (!sendable(candidate)) return "That is not a valid API key: it has characters an HTTP header cannot carry.";
  let res;
  try {
    res = await fetch("/v1/jobs?limit=1", { headers: { authorization: `Bearer ${candidate}` } });
  } catch {
    return "The gateway could not be reached.";
  }
  if (!res.ok) return signInProblem(res);
  keep(candidate);
  $("api-key").value = "";
  say("Signed in.");
  route();
  return "";
}

$("signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const button = $("signin-form").querySelector("button");
  if (button.disabled) return;
  $("signin-error").textContent = "";
  busy(button, async () => {
    $("signin-error").textContent = await signIn($("api-key").value.trim());
  });
});
$("sign-out").addEventListener("click", () => signOut());

listControls(route);
window.addEventListener("hashchange", () => {
  say("");
  route();
});
if (!location.hash) history.replaceState(null, "", "#/jobs");
route();
