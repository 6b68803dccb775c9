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
