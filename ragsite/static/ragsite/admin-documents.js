/* The document admin (ingestion/admin.py; no inline code: the CSP allows none).
   On the list: the status and progress of documents still being processed
   refresh in place, from the admin's progress/?ids=… view (the same cells the
   list renders), until each is finished.
   On the upload form: files can be dropped on the file field; the chosen files
   are listed, and one of a type the server does not read (the input's own
   `accept` list) is flagged at once; the server refuses it too, with the reason. */
(function () {
  "use strict";

  const POLL_MS = 2000;
  const MAX_DELAY_MS = 60000;

  function liveProgress(list) {
    const rows = new Map();
    for (const box of list.querySelectorAll("tbody input.action-select")) {
      const row = box.closest("tr");
      if (row && row.querySelector(".field-status_badge")) rows.set(box.value, row);
    }
    let waiting = [...rows.keys()];  // the first poll asks about every row, then only the unfinished
    let failures = 0;
    const url = new URL("progress/", window.location.href);

    async function poll() {
      if (!waiting.length) return;
      if (document.hidden) {
        window.setTimeout(poll, POLL_MS);
        return;
      }
      url.search = "?ids=" + waiting.join(",");
      try {
        const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
        if (!response.ok) throw new Error("HTTP " + response.status);
        const documents = (await response.json()).documents;
        waiting = waiting.filter((id) => documents[id] && !documents[id].finished);
        for (const [id, cells] of Object.entries(documents)) {
          const row = rows.get(id);
          row.querySelector(".field-status_badge").innerHTML = cells.status_badge;  // escaped by format_html
          const progress = row.querySelector(".field-progress");
          if (progress) progress.textContent = cells.progress;
        }
        failures = 0;
      } catch (error) {
        failures += 1;
      }
      window.setTimeout(poll, Math.min(POLL_MS * 2 ** failures, MAX_DELAY_MS));
    }
    poll();
  }

  function dropZone(input) {
    const zone = input.closest(".form-row") || input.parentElement;
    const accepted = (input.getAttribute("accept") || "").split(",").filter(Boolean);
    const hint = document.createElement("p");
    hint.className = "help rag-drop-hint";  // aligned with the field, as its help text is
    hint.textContent = "Drop files anywhere in this box, or choose them.";
    const chosen = document.createElement("ul");
    chosen.className = "rag-drop-files";
    chosen.setAttribute("aria-live", "polite");
    const field = input.closest(".flex-container") || input;  // the label and the input, side by side
    field.insertAdjacentElement("afterend", chosen);
    field.insertAdjacentElement("afterend", hint);
    zone.classList.add("rag-dropzone");

    function supported(name) {
      const dot = name.lastIndexOf(".");
      return !accepted.length || (dot > 0 && accepted.includes(name.slice(dot).toLowerCase()));
    }

    function list() {
      chosen.replaceChildren();
      for (const file of input.files) {
        const item = document.createElement("li");
        const ok = supported(file.name);
        item.textContent = file.name + (ok ? "" : ": not a type this site reads; it will be refused");
        if (!ok) item.className = "rag-drop-refused";
        chosen.append(item);
      }
    }

    for (const name of ["dragenter", "dragover"]) {
      zone.addEventListener(name, (event) => {
        event.preventDefault();
        zone.classList.add("rag-dragging");
      });
    }
    zone.addEventListener("dragleave", (event) => {
      if (!zone.contains(event.relatedTarget)) zone.classList.remove("rag-dragging");
    });
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("rag-dragging");
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        list();
      }
    });
    input.addEventListener("change", list);
  }

  function start() {
    const list = document.querySelector("#changelist #result_list");
    if (list) liveProgress(list);
    const input = document.querySelector('input[type="file"][name="upload"]');
    if (input) dropZone(input);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
