// Progressive enhancement only: every action works without this file.
// After an htmx swap, move focus to the element the server marked with data-focus-after-swap,
// so keyboard and screen-reader users continue where the change happened.
document.addEventListener("htmx:afterSettle", (event) => {
  const target = event.detail.elt.querySelector?.("[data-focus-after-swap]")
    || document.querySelector("[data-focus-after-swap]");
  if (target) {
    target.removeAttribute("data-focus-after-swap");
    target.focus();
  }
});
// When a swap takes away the element that had the focus and the server marked nothing (an edit
// row opened or cancelled, a form answered with errors, a row deleted, a warning acknowledged),
// focus would fall back to the top of the page. It goes instead into what replaced the element:
// the first field with an error, else the first field, else the first link or button, else the
// region's heading; a deleted row hands it to its neighbour row, or to the table's heading.
let focusBeforeSwap = null;
document.addEventListener("htmx:beforeSwap", (event) => {
  const active = document.activeElement;
  const target = event.detail.target;
  if (!active || active === document.body || !target?.contains(active)) return;
  const row = target.closest("tr[id]");
  focusBeforeSwap = {
    targetId: target.id,
    neighbourId: (row?.nextElementSibling || row?.previousElementSibling)?.id || null,
    regionId: target.closest("section[id]")?.id || null,
  };
});
const FOCUS_ORDER = [
  "[aria-invalid='true']",
  ".has-error :is(input, select, textarea)",
  ":is(input, select, textarea):not([type='hidden']):not([disabled])",
  "a[href], button:not([disabled])",
  "h2, h3",
];
function focusInside(region) {
  for (const selector of FOCUS_ORDER) {
    const element = region.matches(selector) ? region : region.querySelector(selector);
    if (!element) continue;
    if (/^H[23]$/.test(element.tagName)) element.setAttribute("tabindex", "-1");
    element.focus();
    return true;
  }
  return false;
}
document.addEventListener("htmx:afterSettle", () => {
  const lost = focusBeforeSwap;
  focusBeforeSwap = null;
  const active = document.activeElement;
  if (!lost || (active && active !== document.body)) return;
  const places = [lost.targetId, lost.neighbourId, lost.regionId];
  for (const id of places) {
    const region = id && document.getElementById(id);
    if (region && focusInside(region)) return;
  }
});
// Confirmation for destructive buttons without inline handlers (CSP forbids them).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
}, true);
// Every write answers with the plan's new version; all forms on the page carry it, so the next
// write from this page is not mistaken for a stale one.
document.body.addEventListener("plan-version", (event) => {
  for (const input of document.querySelectorAll("input.plan-version")) {
    input.value = event.detail.version;
  }
  // The page head, outside the swapped regions, names the version too.
  for (const number of document.querySelectorAll(".plan-version-number")) {
    number.textContent = event.detail.version;
  }
});
// The patient search is POSTed so that names stay out of URLs and server logs, which means the
// browser forgets it on Back. This tab keeps it (sessionStorage: this tab only, under this
// user's key, gone when the tab closes or on logging out) and runs it again on return.
const keptSearch = document.querySelector("input[data-kept-search]");
if (keptSearch) {
  const key = keptSearch.dataset.keptSearch;
  keptSearch.addEventListener("input", () => {
    if (keptSearch.value) sessionStorage.setItem(key, keptSearch.value);
    else sessionStorage.removeItem(key);
  });
  // After htmx has set up the page (its own DOMContentLoaded handler runs first).
  document.addEventListener("DOMContentLoaded", () => {
    const kept = sessionStorage.getItem(key);
    if (!keptSearch.value && kept) {
      keptSearch.value = kept;
      htmx.trigger(keptSearch.form, "submit");
    }
  });
}
document.addEventListener("submit", (event) => {
  if (!event.target.matches("[data-forget-search]")) return;
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith("patient-search-")) sessionStorage.removeItem(key);
  }
});
