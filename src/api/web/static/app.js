// The little the pages script: list rows, bulk select-all, the inbox's live refresh, and file uploads.
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

// File and image fields: pick or drop files; each uploads at once with a progress bar and shows its thumbnail.
function uploadStatus(zone, text, isError) {
  const status = zone.querySelector("[data-upload-status]");
  status.textContent = text;
  status.classList.toggle("field-error", Boolean(isError));
}

function addFileItem(zone, file) {
  const item = document.createElement("li");
  item.className = "file-item";
  item.dataset.file = "";
  const input = document.createElement("input");
  input.type = "hidden";
  input.name = zone.dataset.name;
  input.value = file.id;
  const link = document.createElement("a");
  link.href = file.url;
  link.target = "_blank";
  link.rel = "noopener";
  if (file.thumbnail_url) {
    const image = document.createElement("img");
    image.className = "thumb";
    image.src = file.thumbnail_url;
    image.alt = file.filename;
    link.append(image);
  } else {
    link.className = "file-name";
    link.textContent = file.filename;
  }
  const caption = document.createElement("span");
  caption.className = "file-caption";
  caption.textContent = file.size_text ? `${file.filename} · ${file.size_text}` : file.filename;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "link-button danger";
  remove.dataset.removeFile = "";
  remove.textContent = document.documentElement.lang === "en" ? "Remove" : "移除";
  item.append(input, link, caption, remove);
  const list = zone.querySelector("[data-files]");
  if (zone.dataset.multiple !== "true") list.replaceChildren();
  list.append(item);
}

function uploadOne(zone, form, file) {
  return new Promise((resolve) => {
    const url = new URL(form.dataset.uploadUrl, window.location.href);
    url.searchParams.set("task_id", form.dataset.taskId);
    url.searchParams.set("field", zone.dataset.name);
    const body = new FormData();
    body.append("file", file, file.name);
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = 0;
    progress.setAttribute("aria-label", file.name);
    zone.querySelector("[data-upload-status]").before(progress);
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress.value = Math.round((event.loaded / event.total) * 100);
    });
    request.addEventListener("loadend", () => {
      progress.remove();
      let answer = {};
      try { answer = JSON.parse(request.responseText || "{}"); } catch (error) { answer = {}; }
      if (request.status === 201) {
        addFileItem(zone, answer);
        uploadStatus(zone, "", false);
      } else {
        uploadStatus(zone, answer.message || answer.detail || `${file.name}: ${request.status}`, true);
      }
      resolve();
    });
    request.send(body);
  });
}

async function uploadFiles(zone, files) {
  const form = zone.closest("form");
  const chosen = zone.dataset.multiple === "true" ? [...files] : [...files].slice(0, 1);
  for (const file of chosen) {
    await uploadOne(zone, form, file);
  }
}

document.addEventListener("change", (event) => {
  const input = event.target.closest("[data-file-input]");
  if (!input) return;
  uploadFiles(input.closest("[data-dropzone]"), input.files).then(() => { input.value = ""; });
});

document.addEventListener("click", (event) => {
  const remove = event.target.closest("[data-remove-file]");
  if (remove) remove.closest("[data-file]").remove();
});

for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (event) => {
    const zone = event.target.closest && event.target.closest("[data-dropzone]");
    if (!zone) return;
    event.preventDefault();
    zone.classList.add("dragging");
  });
}
document.addEventListener("dragleave", (event) => {
  const zone = event.target.closest && event.target.closest("[data-dropzone]");
  if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
});
document.addEventListener("drop", (event) => {
  const zone = event.target.closest && event.target.closest("[data-dropzone]");
  if (!zone) return;
  event.preventDefault();
  zone.classList.remove("dragging");
  uploadFiles(zone, event.dataTransfer.files);
});
