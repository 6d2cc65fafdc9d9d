"use strict";
(function () {
  const messages = document.getElementById("messages");
  const form = document.getElementById("ask");
  const input = document.getElementById("question");
  const send = document.getElementById("send");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  // No inline script (the Content-Security-Policy allows none): the page's URLs are on the form.
  const urls = {ask: form.dataset.askUrl, conversation: form.dataset.conversationUrl, message: form.dataset.messageUrl,
                login: form.dataset.loginUrl};
  // A URL of this conversation's (c/0/... on the form, the id put in).
  const ofConversation = (suffix) => urls.conversation.replace("/0/", "/" + conversationId + "/") + suffix;
  // A question typed when the session had ended, kept across the sign-in.
  const KEPT = "rag-kept-question";
  let conversationId = form.dataset.conversationId ? Number(form.dataset.conversationId) : null;
  // The sources of each answer on the page, by message id, for the viewer.
  const sourcesOf = new Map();

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // HTML made by the server (chat/rendering.py: Markdown rendered, then
  // sanitised by an allowlist); everything else on the page is set as text.
  function sanitisedHtml(node, html) {
    node.innerHTML = html;
    return node;
  }

  function where(c) {
    const parts = [c.filename];
    if (c.page) parts.push("page " + c.page);
    return parts.join(", ");
  }

  const WITHDRAWN = "withdrawn — the document was deleted";

  function passage(c) {
    if (c.withdrawn) return el("p", "withdrawn", WITHDRAWN);
    if (c.quote_html) return sanitisedHtml(el("blockquote", "passage"), c.quote_html);
    return el("blockquote", "passage", c.quote || "");
  }

  // What kind of answer this is, said in words (not only by styling).
  const KIND_LABELS = {
    generated: "Checked against the sources",
    quoted: "Quoted from the documents",
    not_found: "Not in the documents",
    refused: "Withheld by the safety check",
    stopped: "Stopped — the answer is incomplete",
    broken: "Interrupted — the answer is incomplete",
    withdrawn: "Its sources have since been deleted — it can no longer be checked",
  };
  function kindBanner(kind, notice) {
    const banner = el("div", "kind kind-" + kind);
    banner.setAttribute("role", "note");
    banner.appendChild(el("strong", null, KIND_LABELS[kind]));
    if (notice) banner.appendChild(el("span", null, " · " + notice));
    return banner;
  }

  function sources(list, id, heading) {
    const box = el("ol", "sources");
    for (const c of list) {
      const li = el("li");
      li.id = "src-" + id + "-" + c.number;
      li.value = c.number;
      const head = el("div", "src-head");
      const open = el("button", "link src-title", c.title || c.filename);
      open.type = "button";
      open.dataset.cite = c.number;
      head.appendChild(open);
      head.appendChild(el("span", "where", " · " + where(c)));
      li.appendChild(head);
      li.appendChild(passage(c));
      box.appendChild(li);
    }
    // Collapsible (open at first): a long list of sources folds away under the answer.
    const wrap = el("details", "sources-wrap");
    wrap.open = true;
    wrap.appendChild(el("summary", "sources-title", heading + " (" + list.length + ")"));
    wrap.appendChild(box);
    return wrap;
  }

  // Helpful / Not helpful: a pair of toggles whose state is stored (a second
  // press takes the verdict back) and shown again after a reload.
  function verdicts(target, url, label) {
    const group = el("span", "verdicts");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", label);
    const buttons = [[true, "Helpful"], [false, "Not helpful"]].map(([value, text]) => {
      const button = el("button", "small verdict", text);
      button.type = "button";
      button.dataset.value = String(value);
      group.appendChild(button);
      return button;
    });
    const show = (helpful) => {
      target.helpful = helpful;
      for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.value === String(helpful)));
    };
    show(target.helpful === undefined ? null : target.helpful);
    for (const button of buttons) {
      button.addEventListener("click", async () => {
        const value = button.dataset.value === "true";
        const wanted = target.helpful === value ? null : value;
        try {
          const response = await fetch(url, {
            method: "POST",
            headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
            body: JSON.stringify({helpful: wanted}),
          });
          if (!response.ok) throw new Error(String(response.status));
          show((await response.json()).helpful);
        } catch (err) {
          button.title = "Not saved: " + readable(err);
        }
      });
    }
    return group;
  }

  function actions(box, m, question) {
    const bar = el("div", "actions");
    bar.appendChild(stamp(m));
    switcher(bar, m);
    const copy = el("button", "small", "Copy");
    copy.type = "button";
    copy.addEventListener("click", () => copyAnswer(copy, m));
    bar.appendChild(copy);
    if (m.feedback_url) bar.appendChild(verdicts(m, m.feedback_url, "Was this answer helpful?"));
    if (question) {  // regenerate: the same question answered anew, as another version of this answer
      const again = el("button", "small", "Ask again");
      again.type = "button";
      again.addEventListener("click", () => {
        if (controller) return;
        if (question.id) ask(question.text, {againOf: question.id, from: box});
        else ask(question.text);
      });
      bar.appendChild(again);
    }
    box.appendChild(bar);
  }

  // The answer as text with its sources listed after it.
  function copyAnswer(button, m) {
    let text = m.content;
    const cited = m.citations || [];
    if (cited.length) {
      text += "\n\nSources:\n" + cited.map((c) => "[" + c.number + "] " + (c.title || c.filename) + " (" + where(c) + ")").join("\n");
    }
    const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 2000); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => { button.textContent = "Copy failed"; });
    } else {
      const area = el("textarea", "visually-hidden");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
      done();
    }
  }

  // A passage box scrolled so that its highlighted sentence is in the middle.
  function centre(quote) {
    const mark = quote.querySelector("mark");
    if (!mark || quote.scrollHeight <= quote.clientHeight) return;
    const box = quote.getBoundingClientRect(), marked = mark.getBoundingClientRect();
    const top = marked.top - box.top + quote.scrollTop;
    quote.scrollTop = Math.max(0, top - Math.max(8, (quote.clientHeight - marked.height) / 2));
  }

  function dropHint() {
    const hint = document.getElementById("hint");
    if (hint) hint.remove();
  }

  // When a message was written: the time today, else the day too; the full date on hover.
  function stamp(m) {
    const node = el("time", "stamp");
    if (!m || !m.created) return node;
    const when = new Date(m.created), now = new Date();
    node.dateTime = m.created;
    node.title = when.toLocaleString();
    const time = when.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
    node.textContent = when.toDateString() === now.toDateString()
      ? time : when.toLocaleDateString([], {day: "numeric", month: "short"}) + ", " + time;
    return node;
  }

  // ‹ 2/3 ›: the versions of a turn (answers asked again, questions edited), to switch between.
  function switcher(bar, m) {
    const versions = (m && m.versions) || [];
    if (versions.length < 2) return;
    const at = versions.indexOf(m.id);
    const group = el("span", "versions");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", (m.role === "user" ? "Question" : "Answer") + " versions");
    const step = (delta, text, label) => {
      const b = el("button", "small version", text);
      b.type = "button";
      b.setAttribute("aria-label", label);
      b.disabled = at + delta < 0 || at + delta >= versions.length;
      b.addEventListener("click", () => switchTo(versions[at + delta]));
      return b;
    };
    group.appendChild(step(-1, "‹", "Previous version"));
    group.appendChild(el("span", "version-count", (at + 1) + "/" + versions.length));
    group.appendChild(step(1, "›", "Next version"));
    bar.appendChild(group);
  }

  async function switchTo(id) {
    if (controller) return;
    try {
      const response = await fetch(ofConversation("switch/"), {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
        body: JSON.stringify({message_id: id}),
      });
      if (!response.ok) throw new Error(String(response.status));
      renderBranch((await response.json()).messages);
    } catch (err) {
      errorMessage("The other version could not be shown. " + readable(err));
    }
  }

  function userMessage(m) {
    dropHint();
    const box = el("div", "msg user");
    const text = typeof m === "string" ? m : m.content;
    if (typeof m !== "string") box.dataset.messageId = m.id;
    box.appendChild(el("div", "body", text));
    const bar = el("div", "actions user-actions");
    if (typeof m !== "string") {
      bar.appendChild(stamp(m));
      switcher(bar, m);
      const edit = el("button", "small", "Edit");
      edit.type = "button";
      edit.setAttribute("aria-label", "Edit this question and send it again");
      edit.addEventListener("click", () => editQuestion(box, m));
      bar.appendChild(edit);
    }
    box.appendChild(bar);
    messages.appendChild(box);
    box.scrollIntoView({block: "end"});
    return box;
  }

  // Edit a question in place; sending it makes a new version of the turn,
  // and the turns after the old one stay on their branch.
  function editQuestion(box, m) {
    if (controller || box.querySelector("form")) return;
    const editor = el("form", "edit-question");
    const area = el("textarea");
    area.value = m.content;
    area.maxLength = 2000;
    area.rows = 3;
    area.setAttribute("aria-label", "Edited question");
    const save = el("button", "small", "Send");
    save.type = "submit";
    const cancel = el("button", "small", "Cancel");
    cancel.type = "button";
    const row = el("div", "edit-actions");
    row.appendChild(save);
    row.appendChild(cancel);
    editor.appendChild(area);
    editor.appendChild(row);
    box.classList.add("editing");
    box.appendChild(editor);
    area.focus();
    const close = () => { editor.remove(); box.classList.remove("editing"); };
    cancel.addEventListener("click", close);
    area.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.stopPropagation(); close(); }
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); editor.requestSubmit(); }
    });
    editor.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = area.value.trim();
      if (!text || controller) return;
      ask(text, {editOf: m.id, from: box});
    });
  }

  // The branch on show, as the server gives it: the page starts with it, and
  // it is drawn again after an answer, a stop or a switch of versions.
  function renderBranch(list) {
    messages.querySelectorAll(".msg").forEach((n) => n.remove());
    sourcesOf.clear();
    let asked = null;
    for (const m of list) {
      if (m.role === "user") {
        userMessage(m);
        asked = {id: m.id, text: m.content};
      } else {
        answerMessage(m, asked);
      }
    }
    shownIds = new Set(list.map((m) => m.id));
    // The last message from its start (a long answer is read from its top).
    const boxes = messages.querySelectorAll(".msg");
    if (boxes.length) boxes[boxes.length - 1].scrollIntoView({block: "start"});
  }
  let shownIds = new Set();

  // An answer as stored (chat/services.py's message_dict): the same live and after a reload.
  function answerMessage(m, question) {
    dropHint();
    const box = el("div", "msg assistant");
    box.dataset.messageId = m.id;
    if (KIND_LABELS[m.kind]) {
      box.classList.add("kind-" + m.kind);
      const cited = m.citations || [];
      const gone = cited.length && cited.every((c) => c.withdrawn) && ["generated", "quoted"].includes(m.kind);
      box.appendChild(gone ? kindBanner("withdrawn", m.notice) : kindBanner(m.kind, m.notice));
    }
    box.appendChild(m.html ? sanitisedHtml(el("div", "body"), m.html) : el("div", "body", m.content));
    if (m.unsupported_spans && m.unsupported_spans.length) {
      box.appendChild(el("p", "unsupported-note", "Underlined sentences are not supported by any passage of the documents."));
    }
    const cited = m.citations || [];
    const closest = m.kind === "not_found" ? (m.passages || []) : [];
    if (cited.length) box.appendChild(sources(cited, m.id, "Sources"));
    if (closest.length) box.appendChild(sources(closest, m.id, "Closest passages"));
    sourcesOf.set(String(m.id), cited.length ? cited : closest);
    if (m.guardrail && m.guardrail.intervened) box.classList.add("flagged");
    actions(box, m, question);
    messages.appendChild(box);
    // Each passage of the list scrolled to its highlighted sentence.
    for (const quote of box.querySelectorAll(".sources blockquote.passage")) centre(quote);
    box.scrollIntoView({block: "end"});
    return box;
  }

  // A request that failed: said in words, with the question to send again.
  function errorMessage(text, question) {
    const box = el("div", "msg assistant error");
    box.setAttribute("role", "alert");
    box.appendChild(el("div", "body", text));
    if (question) {
      const retry = el("button", "small", "Retry");
      retry.type = "button";
      retry.addEventListener("click", () => {
        box.remove();
        // The broken turn stored: its question answered again (a version); else sent anew.
        const users = messages.querySelectorAll(".msg.user[data-message-id]");
        const last = users[users.length - 1];
        const stored = last && last.querySelector(".body").textContent === question && last.nextElementSibling;
        if (stored && stored.classList.contains("kind-broken")) {
          ask(question, {againOf: Number(last.dataset.messageId), from: stored});
        } else {
          ask(question, {repeat: true});
        }
      });
      const bar = el("div", "actions");
      bar.appendChild(retry);
      box.appendChild(bar);
    }
    messages.appendChild(box);
    box.scrollIntoView({block: "end"});
    return box;
  }

  // The session ended (signed out elsewhere, expired): say so, keep the
  // question for after the sign-in, and link to it, back to this chat.
  function signedOut(question) {
    try { sessionStorage.setItem(KEPT, question); } catch (err) { /* private mode: the input keeps it */ }
    input.value = question;
    const box = el("div", "msg assistant error");
    box.setAttribute("role", "alert");
    const body = el("div", "body", "Your session has ended, so the question was not sent. It is kept: ");
    const link = el("a", "", "sign in again");
    link.href = urls.login + "?next=" + encodeURIComponent(location.pathname);
    body.appendChild(link);
    body.appendChild(document.createTextNode(" and it will be in the box, ready to send."));
    box.appendChild(body);
    messages.appendChild(box);
    box.scrollIntoView({block: "end"});
  }

  function signedOutResponse(response, data) {
    return response.status === 401 ||
      (response.status === 403 && /credentials|not authenticated|log ?in|sign ?in/i.test(String(data.detail || "")));
  }

  renderBranch(JSON.parse(document.getElementById("history").textContent));

  // The source viewer: the cited passage, its sentence highlighted, and the original file.
  const viewer = document.getElementById("viewer");
  const viewerTitle = document.getElementById("viewer-title");
  const viewerWhere = document.getElementById("viewer-where");
  const viewerPassage = document.getElementById("viewer-passage");
  const viewerOpen = document.getElementById("viewer-open");
  const viewerMore = document.getElementById("viewer-more");
  const viewerBefore = document.getElementById("viewer-before");
  const viewerAfter = document.getElementById("viewer-after");
  const viewerFigure = document.getElementById("viewer-figure");
  const viewerImage = document.getElementById("viewer-image");
  const viewerCaption = document.getElementById("viewer-caption");
  const viewerVerdict = document.getElementById("viewer-verdict");
  const viewerFull = document.getElementById("viewer-full");
  const viewerAsk = document.getElementById("viewer-ask");
  viewerAsk.addEventListener("click", () => { if (shown) askAbout(shown.document_id, shown.title || shown.filename); });
  const originalSection = document.getElementById("original");
  const originalBar = document.getElementById("original-bar");
  const originalBody = document.getElementById("original-body");
  const originalStatus = document.getElementById("original-status");
  // Where the viewer's module and the vendored PDF.js are (static files, named on the panel).
  const library = {pdfjs: viewer.dataset.pdfjs, worker: viewer.dataset.pdfjsWorker, fonts: viewer.dataset.pdfjsFonts,
                   cmaps: viewer.dataset.pdfjsCmaps};
  let opener = null;
  let shown = null;
  let view = null;  // the original on show (original.js), to redraw or close

  // The sentence a source cites, as plain text (its highlight, else the whole passage).
  function citedText(c) {
    const spans = c.highlight || [];
    const text = spans.length ? spans.map(([start, end]) => c.quote.slice(start, end)).join(" ") : (c.quote || "");
    return text.replace(/[*_`#>|]+/g, " ").replace(/\s+/g, " ").trim();
  }

  // The original document below the passage: the PDF page drawn by PDF.js
  // with the sentence highlighted, or the rendered page scrolled to it; the
  // server's picture of the page when PDF.js cannot draw it.
  async function showOriginal(c) {
    if (view) { view.close(); view = null; }
    originalBody.replaceChildren();
    originalBar.hidden = true;
    viewerFigure.hidden = true;
    originalSection.hidden = c.withdrawn || !c.original_url;
    if (originalSection.hidden) return;
    originalStatus.textContent = "Loading the original…";
    try {
      const module = await import(viewer.dataset.originalJs);
      const opened = c.format === "pdf"
        ? await module.showPdf(originalBody, originalBar, library, c)
        : await module.showDocument(originalBody, originalBar, c, citedText(c));
      if (shown !== c) { opened.close(); return; }
      view = opened;
      originalStatus.textContent = opened.reason || "";
      originalBody.hidden = Boolean(opened.reason);
      bringIntoView(originalBody.querySelector("mark.cited, .pdf-mark"));
    } catch (err) {
      if (shown !== c) return;
      originalBody.hidden = true;
      originalStatus.textContent = "The original could not be drawn here" + (c.page_image_url ? "; here is its page as a picture." : ".");
      showPicture(c);
    }
  }

  // The highlight in the original below the fold of the panel (a phone's
  // sheet): the panel scrolled to the original, under its sticky title.
  function bringIntoView(target) {
    if (!target) return;
    const at = target.getBoundingClientRect(), panel = viewer.getBoundingClientRect();
    if (at.top >= panel.top && at.bottom <= panel.bottom) return;
    const head = viewer.querySelector(".viewer-head").offsetHeight;
    viewer.scrollTop += originalSection.getBoundingClientRect().top - panel.top - head;
  }

  function showPicture(c) {
    viewerFigure.hidden = !c.page_image_url;
    if (!c.page_image_url) return;
    viewerImage.src = c.page_image_url;
    document.getElementById("viewer-image-link").href = c.page_image_url;
    viewerImage.alt = "Page " + c.page + " of " + c.filename + ", the cited sentence highlighted";
    viewerCaption.textContent = "Page " + c.page + ", as printed";
  }

  // Full screen: the viewer over the whole window, the original at its full width.
  function fullScreen(on) {
    viewer.classList.toggle("full", on);
    viewerFull.setAttribute("aria-pressed", String(on));
    viewerFull.textContent = on ? "Exit full screen" : "Full screen";
    requestAnimationFrame(() => { if (view) view.refit(true); });
  }
  viewerFull.addEventListener("click", () => fullScreen(!viewer.classList.contains("full")));
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (view && !viewer.hidden) view.refit(); }, 150);
  });

  // The passages before and after the cited one, on demand.
  viewerMore.addEventListener("click", async () => {
    const c = shown;
    viewerMore.disabled = true;
    try {
      const response = await fetch(c.around_url, {headers: {"Accept": "application/json"}});
      if (!response.ok) throw new Error(String(response.status));
      const around = await response.json();
      if (shown !== c) return;
      for (const [box, p, label] of [[viewerBefore, around.before, "Before"], [viewerAfter, around.after, "After"]]) {
        box.replaceChildren();
        if (!p) continue;
        box.appendChild(el("div", "context-label", label + (p.page ? " · page " + p.page : "") + (p.heading ? " · " + p.heading : "")));
        box.appendChild(sanitisedHtml(el("blockquote", "passage"), p.html));
      }
      viewerMore.hidden = true;
      if (!around.before && !around.after) viewerAfter.appendChild(el("p", "muted", "This passage is the whole document."));
    } catch (err) {
      viewerAfter.replaceChildren(el("p", "error", "The passages around it could not be loaded."));
    } finally {
      viewerMore.disabled = false;
    }
  });

  function openSource(messageId, number, from) {
    const c = (sourcesOf.get(String(messageId)) || []).find((s) => s.number === number);
    if (!c) return;
    viewerTitle.textContent = "[" + number + "] " + (c.title || c.filename);
    viewerWhere.textContent = where(c) + (c.heading ? " · " + c.heading : "");
    if (c.ocr_confidence !== null && c.ocr_confidence !== undefined) {  // the page's text came from a scan
      viewerWhere.appendChild(el("span", "ocr-note",
        " · text read by OCR from a scan (" + Math.round(c.ocr_confidence) + "% confidence): check the page image"));
    }
    viewerPassage.replaceChildren(passage(c));
    viewerBefore.replaceChildren();
    viewerAfter.replaceChildren();
    shown = c;
    viewerMore.hidden = !c.around_url;
    viewerAsk.hidden = c.withdrawn || !c.document_id;
    viewerImage.removeAttribute("src");
    viewerOpen.hidden = !c.file_url;
    if (c.file_url) {
      viewerOpen.href = c.file_url;
      viewerOpen.textContent = c.format === "pdf" ? "Open the PDF" + (c.page ? " at page " + c.page : "") : "Open the file";
    }
    viewerVerdict.replaceChildren();
    if (c.feedback_url) {
      viewerVerdict.appendChild(el("span", "muted", "Did this source help? "));
      viewerVerdict.appendChild(verdicts(c, c.feedback_url, "Did this source help?"));
    }
    if (c.opened_url && !c.opened) {  // the source was worth opening: a signal for the retriever's fine-tuning
      c.opened = true;
      fetch(c.opened_url, {method: "POST", headers: {"X-CSRFToken": csrf}}).catch(() => {});
    }
    viewer.hidden = false;
    document.body.classList.add("viewing");
    opener = from;
    viewer.focus();
    const mark = viewerPassage.querySelector("mark");
    if (mark) mark.scrollIntoView({block: "center"});
    showOriginal(c);
  }

  function closeSource() {
    fullScreen(false);
    if (view) { view.close(); view = null; }
    shown = null;
    viewer.hidden = true;
    document.body.classList.remove("viewing");
    if (opener && opener.isConnected) opener.focus();
  }

  // A preview of [n] (hover, keyboard focus, or a long press on a touch
  // screen): the source's title and the sentence it is cited for.
  const preview = el("div", "cite-preview");
  preview.id = "cite-preview";
  preview.setAttribute("role", "tooltip");
  preview.hidden = true;
  document.body.appendChild(preview);
  let previewTimer = null, previewed = null, longPressed = false;

  function sourceOf(link) {
    const box = link.closest(".msg");
    return box && (sourcesOf.get(String(box.dataset.messageId)) || []).find((s) => s.number === Number(link.dataset.cite));
  }

  function showPreview(link) {
    const c = sourceOf(link);
    if (!c) return;
    preview.replaceChildren(el("div", "preview-title", "[" + c.number + "] " + (c.title || c.filename)),
                            el("div", "where", where(c)));
    preview.appendChild(c.withdrawn ? el("p", "withdrawn", WITHDRAWN) : el("p", "preview-sentence", citedText(c)));
    preview.hidden = false;
    const r = link.getBoundingClientRect();
    const width = preview.offsetWidth, height = preview.offsetHeight;
    preview.style.left = Math.max(8, Math.min(r.left, window.innerWidth - width - 8)) + "px";
    const below = r.bottom + 6 + height <= window.innerHeight;
    preview.style.top = (below ? r.bottom + 6 : Math.max(8, r.top - height - 6)) + "px";
    link.setAttribute("aria-describedby", "cite-preview");
    previewed = link;
  }

  function hidePreview() {
    clearTimeout(previewTimer);
    preview.hidden = true;
    if (previewed) previewed.removeAttribute("aria-describedby");
    previewed = null;
  }

  function citeLink(event) {
    return event.target.closest && event.target.closest(".body a.cite");
  }
  messages.addEventListener("mouseover", (event) => {
    const link = citeLink(event);
    if (!link || link === previewed) return;
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => showPreview(link), 250);
  });
  messages.addEventListener("mouseout", (event) => {
    const link = citeLink(event);
    if (link && !link.contains(event.relatedTarget)) hidePreview();
  });
  messages.addEventListener("focusin", (event) => { const link = citeLink(event); if (link) showPreview(link); });
  messages.addEventListener("focusout", (event) => { if (citeLink(event)) hidePreview(); });
  messages.addEventListener("touchstart", (event) => {
    const link = citeLink(event);
    longPressed = false;
    if (!link) return;
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => { longPressed = true; showPreview(link); }, 450);
  }, {passive: true});
  for (const name of ["touchend", "touchmove", "touchcancel"]) {
    messages.addEventListener(name, () => clearTimeout(previewTimer), {passive: true});
  }
  // A long press previews; the tap that ends it does not also open the viewer.
  messages.addEventListener("contextmenu", (event) => { if (citeLink(event) && longPressed) event.preventDefault(); });
  messages.addEventListener("scroll", hidePreview, {passive: true});

  messages.addEventListener("click", (event) => {
    if (longPressed && citeLink(event)) {
      longPressed = false;
      event.preventDefault();
      return;
    }
    hidePreview();
    const link = event.target.closest("[data-cite]");
    const box = link && link.closest(".msg");
    if (!box || !box.dataset.messageId) return;
    event.preventDefault();
    openSource(box.dataset.messageId, Number(link.dataset.cite), link);
  });
  document.getElementById("viewer-close").addEventListener("click", closeSource);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") hidePreview();
    if (event.key !== "Escape" || viewer.hidden) return;
    if (viewer.classList.contains("full")) fullScreen(false);
    else closeSource();
  });

  // A suggested question (on the welcome) fills the box, ready to send or edit.
  for (const button of document.querySelectorAll(".suggestion")) {
    button.addEventListener("click", () => {
      input.value = button.dataset.question;
      input.focus();
    });
  }

  // The sidebar behind a menu button on narrow screens.
  const menu = document.getElementById("menu");
  function showMenu(open) {
    document.body.classList.toggle("menu-open", open);
    menu.setAttribute("aria-expanded", String(open));
  }
  menu.addEventListener("click", () => showMenu(!document.body.classList.contains("menu-open")));
  // Tapping the chat or pressing Escape puts it away again.
  document.querySelector(".chat").addEventListener("click", () => showMenu(false));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.body.classList.contains("menu-open")) {
      showMenu(false);
      menu.focus();
    }
  });

  // Enter sends; Shift+Enter (or an input method composing) makes a new line.
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // Read Server-Sent Events from a streamed POST /api/ask.
  async function* events(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    while (true) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        yield {name: name, data: JSON.parse(data)};
      }
    }
  }

  // A sidebar entry like the server's (templates/chat/conversation_item.html):
  // the blank on the page, given the id, title and time.
  function sidebarItem(id, title, updated, updatedText) {
    const item = document.importNode(document.getElementById("conversation-item").content, true).firstElementChild;
    const link = item.querySelector("a");
    link.href = urls.conversation.replace("/0/", "/" + id + "/");
    link.textContent = title;
    link.title = title;
    for (const f of item.querySelectorAll("form")) f.setAttribute("action", f.getAttribute("action").replace("/c/0/", "/c/" + id + "/"));
    const field = item.querySelector("input[name=title]");
    field.id = "title-" + id;
    field.value = title;
    item.querySelector("label[for]").htmlFor = field.id;
    item.querySelector("summary .visually-hidden").textContent = " “" + title + "”";
    item.querySelector("input[name=next]").value = location.pathname;
    const time = item.querySelector("time");
    time.dateTime = updated;
    time.textContent = updatedText;
    return item;
  }

  function remember(id, question) {
    conversationId = id;
    const url = urls.conversation.replace("/0/", "/" + id + "/");
    history.replaceState(null, "", url);
    const list = document.getElementById("conversations");
    list.querySelectorAll(".muted").forEach((n) => n.remove());
    list.querySelectorAll(".current").forEach((n) => n.classList.remove("current"));
    const now = new Date();
    const text = now.toLocaleDateString([], {day: "numeric", month: "short", year: "numeric"}) + ", " +
      now.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hour12: false});
    const item = sidebarItem(id, question.slice(0, 200), now.toISOString(), text);
    item.classList.add("current");
    item.querySelector("input[name=next]").value = url;
    list.prepend(item);
    initialList = null;  // the list as first drawn is out of date
  }

  // Search as you type: the matching conversations, each with a snippet of
  // its matching turn (the match marked); an empty box brings the list back.
  const searchBox = document.getElementById("search");
  const searching = document.getElementById("searching");
  let initialList = null, searchTimer = null, searchSeq = 0;
  function marked(text, query) {
    const out = el("p", "snippet");
    const at = text.toLowerCase().indexOf(query.toLowerCase());
    if (at < 0) { out.textContent = text; return out; }
    out.appendChild(document.createTextNode(text.slice(0, at)));
    out.appendChild(el("mark", null, text.slice(at, at + query.length)));
    out.appendChild(document.createTextNode(text.slice(at + query.length)));
    return out;
  }
  async function searchNow(query) {
    const list = document.getElementById("conversations");
    if (initialList === null && !new URLSearchParams(location.search).get("q")) initialList = [...list.children];
    const seq = ++searchSeq;
    if (!query) {
      if (initialList) list.replaceChildren(...initialList);
      searching.hidden = true;
      return;
    }
    try {
      const response = await fetch(searchBox.form.dataset.searchUrl + "?q=" + encodeURIComponent(query),
                                   {headers: {"Accept": "application/json"}});
      if (!response.ok || seq !== searchSeq) return;
      const data = await response.json();
      if (seq !== searchSeq) return;
      const items = data.results.map((r) => {
        const item = sidebarItem(r.id, r.label, r.updated, r.updated_text);
        if (r.id === conversationId) item.classList.add("current");
        if (r.snippet) item.insertBefore(marked(r.snippet, query), item.querySelector(".meta"));
        return item;
      });
      list.replaceChildren(...(items.length ? items : [el("li", "muted", "No conversation matches.")]));
      searching.hidden = false;
      searching.textContent = data.results.length + (data.results.length === 1 ? " conversation matches" : " conversations match") +
        " “" + query + "”";
    } catch (err) { /* the form still searches on Enter */ }
  }
  searchBox.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => searchNow(searchBox.value.trim()), 200);
  });

  // The stored answer, rendered by the server, for a stream that has ended.
  async function stored(data) {
    const url = urls.message.replace("/c/0/m/0/", "/c/" + data.conversation_id + "/m/" + data.message_id + "/");
    try {
      const response = await fetch(url, {headers: {"Accept": "application/json"}});
      if (response.ok) return await response.json();
    } catch (err) { /* shown as plain text below */ }
    return {id: data.message_id, content: data.answer, kind: data.kind, notice: data.notice, citations: data.citations,
            passages: [], guardrail: data.guardrail};
  }

  function readable(err) {
    if (err && err.name === "TypeError") return "The server could not be reached. Check your connection, then retry.";
    return "Something went wrong while answering. Please retry.";
  }

  let controller = null;
  const scope = document.getElementById("collection");

  function request(question, options) {
    const body = {question: question, conversation_id: conversationId, stream: true};
    if (options.editOf) body.edit_of = options.editOf;
    if (options.againOf) body.again_of = options.againOf;
    if (scope && scope.value) body.collection = [scope.value];
    if (askDocument) body.document = [askDocument.id];
    return body;
  }

  // "Ask this document": the next questions look in one document only,
  // said above the box until it is cleared.
  let askDocument = null;
  const askDocumentNote = document.getElementById("ask-document");
  function askAbout(id, title) {
    askDocument = id ? {id: Number(id), title: title} : null;
    askDocumentNote.hidden = !askDocument;
    document.getElementById("ask-document-title").textContent = askDocument ? "“" + title + "”" : "";
    if (askDocument) {
      if (!viewer.hidden) closeSource();
      input.focus();
    }
  }
  document.getElementById("ask-document-clear").addEventListener("click", () => { askAbout(null); input.focus(); });
  if (form.dataset.aboutId) askAbout(form.dataset.aboutId, form.dataset.aboutTitle);  // from the documents page
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest(".ask-about");
    if (button) askAbout(button.dataset.documentId, button.dataset.documentTitle);
  });

  // The branch as the server has it now; null when it cannot be read.
  async function branchNow() {
    if (conversationId === null) return null;
    try {
      const response = await fetch(ofConversation("branch/"), {headers: {"Accept": "application/json"}});
      return response.ok ? (await response.json()).messages : null;
    } catch (err) {
      return null;
    }
  }

  // A stopped or broken answer is stored by the server once it sees the
  // stream end: shown as stored (its versions, times, Ask again), with the
  // error said below it, when it has arrived.
  async function syncCut(notes) {
    for (const wait of [300, 700, 1500]) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (controller) return;  // another question is on its way
      const list = await branchNow();
      const last = list && list[list.length - 1];
      if (last && last.role === "assistant" && !shownIds.has(last.id) && ["stopped", "broken"].includes(last.kind)) {
        renderBranch(list);
        for (const note of notes) messages.appendChild(note);
        return;
      }
    }
  }

  function busy(on) {
    send.textContent = on ? "Stop" : "Ask";
    send.classList.toggle("stop", on);
    send.type = on ? "button" : "submit";
  }

  send.addEventListener("click", (event) => {
    if (controller) {
      event.preventDefault();
      controller.abort();
    }
  });

  async function ask(question, options) {
    options = options || {};
    if (options.from) {  // a new version: the old one, and what followed it, leave the screen
      for (let node = options.from; node;) {
        const next = node.nextElementSibling;
        if (node.classList.contains("msg")) node.remove();
        node = next;
      }
    }
    const mine = options.repeat || options.againOf ? null : userMessage(question);
    const notes = [];  // errors said below a cut answer
    const pending = el("div", "msg assistant pending");
    const live = el("div", "body", "Searching the documents…");
    pending.appendChild(live);
    messages.appendChild(pending);
    pending.scrollIntoView({block: "end"});
    controller = new AbortController();
    busy(true);
    let text = "";
    // A stream that ends early keeps what arrived, marked as incomplete.
    const cut = (kind, message) => {
      options.cut = true;
      pending.querySelectorAll(".draft-note").forEach((note) => note.remove());
      if (text || kind === "stopped") {
        pending.classList.remove("pending", "streaming");
        pending.classList.add("kind-" + kind);
        if (!text) live.textContent = "";
        pending.insertBefore(kindBanner(kind, message), live);
      } else {
        pending.remove();
      }
    };
    try {
      const response = await fetch(urls.ask, {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "text/event-stream"},
        body: JSON.stringify(request(question, options)),
        signal: controller.signal,
      });
      if (!response.ok) {
        const data = await response.json().catch(() => ({}));
        pending.remove();
        if (signedOutResponse(response, data)) {
          if (mine) mine.remove();  // not sent: it goes back into the box
          signedOut(question);
          return;
        }
        errorMessage(data.detail || ("The server answered with an error (" + response.status + ")."),
                     response.status >= 500 || response.status === 429 ? question : null);
        return;
      }
      let finished = false;
      for await (const ev of events(response)) {
        if (ev.name === "queued") {
          // The server is answering others first: say where this question stands.
          const ahead = ev.data.position;
          live.textContent = "Waiting: " + ahead + (ahead === 1 ? " question" : " questions") + " ahead of yours…";
          pending.classList.add("queued");
        } else if (ev.name === "start") {
          if (pending.classList.contains("queued")) {
            pending.classList.remove("queued");
            live.textContent = "Searching the documents…";
          }
          if (conversationId === null) remember(ev.data.conversation_id, question);
        } else if (ev.name === "token") {
          text += ev.data.text;
          live.textContent = text;
          if (!pending.classList.contains("streaming")) {
            // The model's words are a draft until our check of them against the documents is done.
            pending.classList.add("streaming");
            pending.insertBefore(el("div", "draft-note", "Draft: being checked against the documents…"), live);
          }
        } else if (ev.name === "error") {
          finished = true;
          cut("broken", "");
          notes.push(errorMessage(ev.data.detail, question));
        } else if (ev.name === "retract") {
          live.textContent = ev.data.reason;
          pending.querySelectorAll(".draft-note").forEach((note) => note.remove());
        } else if (ev.name === "replace") {
          pending.querySelectorAll(".draft-note").forEach((note) => note.remove());
          // The model's text did not verify: the evidence replaces it, visibly.
          live.textContent = ev.data.answer;
          pending.insertBefore(kindBanner(ev.data.kind, ev.data.notice), live);
        } else if (ev.name === "done") {
          finished = true;
          const list = await branchNow();
          if (list) {
            renderBranch(list);
          } else {
            pending.remove();
            answerMessage(await stored(ev.data), {id: null, text: question});
          }
        }
      }
      if (!finished) {
        cut("broken", "");
        notes.push(errorMessage("The answer was cut off before it finished.", question));
      }
    } catch (err) {
      if (err.name === "AbortError") {
        cut("stopped", "");
      } else {
        cut("broken", "");
        notes.push(errorMessage(readable(err), question));
      }
    } finally {
      controller = null;
      busy(false);
      input.focus();
    }
    if (options.cut && conversationId !== null) syncCut(notes);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || controller) return;
    input.value = "";
    ask(question);
  });

  // Keyboard shortcuts (listed on the sheet that Ctrl+/ or the Shortcuts link opens).
  const sheet = document.getElementById("shortcuts");
  document.getElementById("shortcuts-open").addEventListener("click", () => sheet.showModal());
  function copyLastAnswer() {
    const boxes = messages.querySelectorAll(".msg.assistant[data-message-id]");
    const last = boxes[boxes.length - 1];
    const copy = last && [...last.querySelectorAll(".actions button")].find((b) => b.textContent === "Copy");
    if (copy) copy.click();
  }
  document.addEventListener("keydown", (event) => {
    const mod = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    if (mod && event.shiftKey && key === "o") {
      event.preventDefault();
      location.href = urls.conversation.replace(/c\/0\/$/, "");
    } else if (event.shiftKey && event.key === "Escape") {
      event.preventDefault();
      input.focus();
    } else if (mod && !event.shiftKey && key === "k") {
      event.preventDefault();
      if (window.matchMedia("(max-width: 720px)").matches) showMenu(true);
      document.getElementById("search").focus();
    } else if (mod && event.shiftKey && key === "c") {
      event.preventDefault();
      copyLastAnswer();
    } else if (mod && (key === "/" || key === "?")) {
      event.preventDefault();
      if (sheet.open) sheet.close(); else sheet.showModal();
    }
  });

  // Forms that destroy something ask first (the sidebar's delete).
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  try {
    const kept = sessionStorage.getItem(KEPT);
    if (kept && !input.value) input.value = kept;
    sessionStorage.removeItem(KEPT);
  } catch (err) { /* no storage: nothing was kept */ }
  input.focus();
})();
