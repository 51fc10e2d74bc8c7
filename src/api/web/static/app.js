// The little the pages script: add/remove list rows, select all for bulk actions, and the inbox's live refresh.
"use strict";

function addRow(list) {
  const template = list.querySelector(":scope > [data-row-template]");
  const rows = list.querySelector(":scope > [data-rows]");
  const index = Number(list.dataset.nextIndex || rows.children.length);
  list.dataset.nextIndex = String(index + 1);
  // Each nesting level has its own placeholder, so a row holding a list keeps its inner template intact.
  const html = template.innerHTML
    .split(list.dataset.indexToken).join(String(index))
    .split(list.dataset.numberToken).join(String(rows.children.length + 1));
  rows.insertAdjacentHTML("beforeend", html);
  const first = rows.lastElementChild.querySelector("input:not([type=hidden]), select, textarea");
  if (first) first.focus();
}

document.addEventListener("click", (event) => {
  const add = event.target.closest("[data-add-row]");
  if (add) {
    addRow(add.closest("[data-list]"));
    return;
  }
  const remove = event.target.closest("[data-remove-row]");
  if (remove) {
    const list = remove.closest("[data-list]");
    remove.closest("[data-row]").remove();
    list.querySelector(":scope > [data-add-row]").focus();
    return;
  }
  const selectAll = event.target.closest("[data-select-all]");
  if (selectAll) {
    const boxes = [...document.querySelectorAll(`input[type=checkbox][name="${selectAll.dataset.selectAll}"]`)];
    const check = boxes.some((box) => !box.checked);
    boxes.forEach((box) => { box.checked = check; });
  }
});

function startLiveRefresh(box) {
  let timer = 0;
  const schedule = (delay) => {
    window.clearTimeout(timer);
    timer = window.setTimeout(tick, delay);
  };
  const wait = () => Number(box.dataset.pollMs) || 5000;
  async function tick() {
    // Skip while the tab is hidden or the user is on a control inside (a swap would take their focus away).
    const busy = box.contains(document.activeElement) && document.activeElement !== document.body;
    if (!document.hidden && !busy) {
      try {
        const url = new URL(box.dataset.liveUrl, window.location.href);
        url.searchParams.set("known", box.dataset.fingerprint || "");
        const response = await fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "X-Live-Refresh": "1" } });
        if (response.status === 200) {
          box.innerHTML = await response.text();
          box.dataset.fingerprint = response.headers.get("X-Fingerprint") || "";
        } else if (response.status === 401) {
          window.location.reload();
          return;
        }
      } catch (error) {
        // Offline for a moment: the next tick tries again.
      }
    }
    schedule(wait());
  }
  // Coming back to the tab refreshes at once instead of at the next tick.
  document.addEventListener("visibilitychange", () => { if (!document.hidden) schedule(0); });
  schedule(wait());
}

document.querySelectorAll("[data-live-url]").forEach(startLiveRefresh);

const summary = document.querySelector("[data-error-summary]");
if (summary) summary.focus();
