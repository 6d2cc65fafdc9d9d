"use strict";
// Staff add documents from the chat: the "Add documents" link or files
// dropped anywhere on the page go, one request each, to POST /api/documents/
// (the REST API's upload, with its checks) in the chosen collection; each
// file's row then follows the document through reading and embedding
// (GET /api/documents/?ids=…) until it is indexed, and offers to ask about
// it. A refused file says why and the others go on.
(function () {
  const panel = document.getElementById("uploads");
  if (!panel) return;
  const api = panel.dataset.apiUrl;
  const maxBytes = Number(panel.dataset.maxBytes);
  const csrf = document.querySelector("#ask input[name=csrfmiddlewaretoken]").value;
  const list = document.getElementById("upload-list");
  const collection = document.getElementById("upload-collection");
  const picker = document.getElementById("upload-files");
  const drop = document.getElementById("drop");
  const watched = new Map();  // document id -> its row
  let polling = null;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function size(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return Math.round(bytes / 1024) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function row(file) {
    const item = el("li", "upload");
    const head = el("div", "upload-head");
    head.appendChild(el("span", "upload-name", file.name));
    head.appendChild(el("span", "upload-size", size(file.size)));
    const bar = el("progress");
    bar.max = 1;
    bar.value = 0;
    const state = el("div", "upload-state", "Waiting…");
    item.appendChild(head);
    item.appendChild(bar);
    item.appendChild(state);
    list.prepend(item);
    return {item: item, bar: bar, state: state};
  }

  function show(r, text, value, kind) {
    r.state.textContent = text;
    if (value !== null) r.bar.value = value;
    r.item.dataset.state = kind || "working";
  }

  // The reason the server gave, said plainly.
  function reason(data, status) {
    const first = (v) => (Array.isArray(v) ? v[0] : v);
    return first(data.file) || first(data.collection) || first(data.detail) ||
      (status === 413 ? "The file is too large." : "The upload failed (" + status + ").");
  }

  function upload(file) {
    const r = row(file);
    if (file.size > maxBytes) {
      show(r, "Refused: the file is larger than " + size(maxBytes) + ".", 0, "failed");
      return;
    }
    const form = new FormData();
    form.append("file", file);
    form.append("collection", collection.value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", api);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    // Sending the file is the first fifth of the bar; reading and embedding the rest.
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) show(r, "Uploading " + Math.round(100 * event.loaded / event.total) + "%", 0.2 * event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch (err) { /* not JSON: said by status */ }
      if (xhr.status === 200 || xhr.status === 202) {
        r.id = data.id;
        r.title = data.title;
        watched.set(data.id, r);
        follow(r, data);
        poll();
      } else {
        show(r, "Refused: " + reason(data, xhr.status), 0, "failed");
      }
    });
    xhr.addEventListener("error", () => show(r, "The upload failed: the server could not be reached.", 0, "failed"));
    show(r, "Uploading 0%", 0);
    xhr.send(form);
  }

  // A document's state as the API reports it.
  function follow(r, d) {
    r.title = d.title || r.title;
    if (d.status === "indexed") {
      show(r, "Indexed — ready to ask about.", 1, "indexed");
      watched.delete(d.id);
      if (!r.item.querySelector(".ask-about")) {
        const ask = el("button", "link ask-about", "Ask about it");
        ask.type = "button";
        ask.dataset.documentId = d.id;
        ask.dataset.documentTitle = r.title;
        r.state.appendChild(document.createTextNode(" "));
        r.state.appendChild(ask);
      }
    } else if (d.status === "failed" || d.status === "cancelled") {
      show(r, (d.status === "failed" ? "Failed: " : "Cancelled. ") + (d.error || ""), r.bar.value, "failed");
      watched.delete(d.id);
    } else if (d.status === "embedding" && d.chunks_total) {
      const done = d.chunks_embedded / d.chunks_total;
      show(r, "Embedding " + d.chunks_embedded + " of " + d.chunks_total + " passages…", 0.35 + 0.65 * done);
    } else if (d.status === "parsing") {
      show(r, "Reading the file…", 0.3);
    } else {
      show(r, "Uploaded; waiting for a worker…", 0.25);
    }
  }

  function poll() {
    if (polling || !watched.size) return;
    polling = setTimeout(async () => {
      polling = null;
      const ids = [...watched.keys()].slice(0, 100).join(",");
      try {
        const response = await fetch(api + "?ids=" + ids, {headers: {"Accept": "application/json"}});
        if (response.ok) for (const d of (await response.json()).results) if (watched.has(d.id)) follow(watched.get(d.id), d);
      } catch (err) { /* tried again below */ }
      poll();
    }, 700);
  }

  function add(files) {
    panel.hidden = false;
    for (const file of files) upload(file);
  }

  // "Add documents" opens the panel (the collection first); "Choose files…" the file picker.
  document.getElementById("upload-open").addEventListener("click", () => {
    panel.hidden = false;
    collection.focus();
  });
  document.getElementById("upload-choose").addEventListener("click", () => picker.click());
  document.getElementById("uploads-close").addEventListener("click", () => { panel.hidden = true; });
  picker.addEventListener("change", () => {
    add([...picker.files]);
    picker.value = "";
  });

  // Files dragged over the page: say where they will go; dropped: add them.
  const carriesFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  let depth = 0;
  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    depth += 1;
    document.getElementById("drop-collection").textContent = collection.value;
    drop.hidden = false;
  });
  document.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) drop.hidden = true;
  });
  document.addEventListener("dragover", (event) => { if (carriesFiles(event)) event.preventDefault(); });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth = 0;
    drop.hidden = true;
    add([...event.dataTransfer.files]);
  });
})();
