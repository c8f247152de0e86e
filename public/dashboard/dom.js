// Page helpers shared by every view. Values from the API reach the page only as text nodes.

export const $ = (id) => document.getElementById(id);

/** Builds an element; children are nodes or strings (strings become text, never HTML). */
export function h(tag, attrs = {}, ...children) {
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
export const say = (text, tone = "") => {
  $("status").textContent = text;
  $("status").className = `status ${tone}`;
  delete $("status").dataset.refresh;
};

/** A failed periodic refresh: said like any problem, but marked so the next good refresh takes it back. */
export const sayRefreshFailed = (err) => {
  say(`Could not refresh: ${err.message}`, "bad");
  $("status").dataset.refresh = "";
};

/** A good refresh: its time is shown (so data left standing by later failures reads as old) and a refresh error is gone. */
export const refreshed = () => {
  if ($("status").dataset.refresh !== undefined) say("");
  $("updated").textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
};
export const clearUpdated = () => {
  $("updated").textContent = "";
};

export const when = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "—");

export const badge = (value) => h("span", { class: `badge ${value}` }, value.replace("_", " "));

/** Output links are re-signed on every read; the first link seen for a file is kept, so images are not fetched again. */
const links = new Map();
export const stableUrl = (url) => {
  const file = url.split("?")[0];
  if (!links.has(file)) links.set(file, url);
  return links.get(file);
};
/** Signed links belong to the key that read them: none outlives a sign-out. */
export const forgetLinks = () => links.clear();

/** Re-renders only when what is shown changed, so a refresh does not steal keyboard focus or reload images. */
export function changed(holder, value) {
  const text = JSON.stringify(value);
  if (holder.last === text) return false;
  holder.last = text;
  return true;
}

/** Runs `action` with `button` disabled, so a double click sends one request; `enabled` says whether it comes back on. */
export async function busy(button, action, enabled = () => true) {
  button.dataset.busy = "";
  button.disabled = true;
  try {
    await action();
  } finally {
    delete button.dataset.busy;
    button.disabled = !enabled();
  }
}

/** Enables or disables `button`, but a refresh does not enable it while its own request runs. */
export const allow = (button, on) => {
  button.disabled = !on || button.dataset.busy !== undefined;
};
