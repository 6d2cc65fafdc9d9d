"use strict";
(function () {
  const messages = document.getElementById("messages");
  const form = document.getElementById("ask");
  const input = document.getElementById("question");
  const send = document.getElementById("send");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  // No inline script (the Content-Security-Policy allows none): the page's URLs are on the form.
  const urls = {ask: form.dataset.askUrl, conversation: form.dataset.conversationUrl};
  let conversationId = form.dataset.conversationId ? Number(form.dataset.conversationId) : null;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The answer text with [n] markers turned into links to its sources.
  function answerBody(text, citations, id, unsupported) {
    const body = el("div", "body");
    const numbers = new Set(citations.map((c) => c.number));
    // Sentences no passage supports are marked, never shown as cited.
    const pieces = [];
    let cursor = 0;
    for (const [start, end] of (unsupported || [])) {
      if (start > cursor) pieces.push([text.slice(cursor, start), false]);
      pieces.push([text.slice(start, end), true]);
      cursor = end;
    }
    pieces.push([text.slice(cursor), false]);
    for (const [piece, isUnsupported] of pieces) {
      const target = isUnsupported ? el("span", "unsupported") : body;
      if (isUnsupported) {
        target.title = "No passage of the documents supports this sentence.";
        body.appendChild(target);
      }
      for (const part of piece.split(/(\[\d+\])/)) {
        const m = part.match(/^\[(\d+)\]$/);
        if (m && numbers.has(Number(m[1]))) {
          const a = el("a", "cite", "[" + m[1] + "]");
          a.href = "#src-" + id + "-" + m[1];
          target.appendChild(a);
        } else if (part) {
          target.appendChild(document.createTextNode(part));
        }
      }
    }
    return body;
  }

  // The passage around the cited evidence sentence, which is marked.
  function quoteWithHighlight(text, highlight) {
    const quote = el("blockquote");
    if (!highlight.length) {
      quote.textContent = text.slice(0, 600);
      return quote;
    }
    const [start, end] = highlight[0];
    const from = Math.max(0, start - 200), to = Math.min(text.length, end + 200);
    quote.appendChild(document.createTextNode((from > 0 ? "…" : "") + text.slice(from, start)));
    quote.appendChild(el("mark", null, text.slice(start, end)));
    quote.appendChild(document.createTextNode(text.slice(end, to) + (to < text.length ? "…" : "")));
    return quote;
  }

  // What kind of answer this is, said in words (not only by styling).
  const KIND_LABELS = {
    quoted: "Quoted from the documents",
    not_found: "Not in the documents",
  };
  function kindBanner(kind, notice) {
    const banner = el("div", "kind kind-" + kind);
    banner.setAttribute("role", "note");
    banner.appendChild(el("strong", null, KIND_LABELS[kind]));
    if (notice) banner.appendChild(el("span", null, " · " + notice));
    return banner;
  }

  function sources(citations, id, heading) {
    const box = el("ol", "sources");
    for (const c of citations) {
      const li = el("li");
      li.id = "src-" + id + "-" + c.number;
      li.value = c.number;
      const head = el("div", "src-head");
      head.appendChild(el("strong", null, c.title));
      const where = [c.filename];
      if (c.page) where.push("page " + c.page);
      head.appendChild(el("span", "where", " · " + where.join(", ")));
      li.appendChild(head);
      li.appendChild(quoteWithHighlight(c.quote || c.text || "", c.highlight || []));
      box.appendChild(li);
    }
    const wrap = el("div", "sources-wrap");
    wrap.appendChild(el("div", "sources-title", heading));
    wrap.appendChild(box);
    return wrap;
  }

  let counter = 0;
  function addMessage(role, text, citations, extra) {
    const hint = document.getElementById("hint");
    if (hint) hint.remove();
    const id = ++counter;
    const box = el("div", "msg " + role);
    if (role === "assistant") {
      const kind = extra && extra.kind;
      if (KIND_LABELS[kind]) {
        box.classList.add("kind-" + kind);
        box.appendChild(kindBanner(kind, extra.notice));
      }
      box.appendChild(answerBody(text, citations || [], id, extra && extra.unsupported));
      if (citations && citations.length) box.appendChild(sources(citations, id, "Sources"));
      if (extra && extra.closest && extra.closest.length) {
        const closest = extra.closest.map((p, i) => Object.assign({number: i + 1, quote: p.text}, p));
        box.appendChild(sources(closest, id, "Closest passages"));
      }
      if (extra && extra.guardrail && extra.guardrail.intervened) box.classList.add("flagged");
    } else {
      box.appendChild(el("div", "body", text));
    }
    messages.appendChild(box);
    box.scrollIntoView({block: "end"});
    return box;
  }

  for (const m of JSON.parse(document.getElementById("history").textContent)) {
    addMessage(m.role, m.content, m.citations, {unsupported: m.unsupported_spans, kind: m.kind, notice: m.notice,
                                                closest: m.passages, guardrail: m.guardrail});
  }

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

  function remember(id, question) {
    conversationId = id;
    const url = urls.conversation.replace("/0/", "/" + id + "/");
    history.replaceState(null, "", url);
    const list = document.querySelector(".sidebar ul");
    list.querySelectorAll(".muted").forEach((n) => n.remove());
    const item = el("li", "current");
    const link = el("a", null, question.slice(0, 200));
    link.href = url;
    item.appendChild(link);
    list.prepend(item);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    addMessage("user", question);
    input.value = "";
    send.disabled = true;
    const pending = addMessage("assistant pending", "Searching the documents…");
    const live = pending.querySelector(".body");
    let text = "";
    try {
      const response = await fetch(urls.ask, {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "text/event-stream"},
        body: JSON.stringify({question: question, conversation_id: conversationId, stream: true}),
      });
      if (!response.ok) {
        const data = await response.json().catch(() => ({}));
        pending.remove();
        addMessage("assistant error", data.detail || ("The request failed (" + response.status + ")."));
        return;
      }
      for await (const ev of events(response)) {
        if (ev.name === "start") {
          if (conversationId === null) remember(ev.data.conversation_id, question);
        } else if (ev.name === "token") {
          text += ev.data.text;
          live.textContent = text;
          pending.classList.add("streaming");
        } else if (ev.name === "error") {
          pending.remove();
          addMessage("assistant error", ev.data.detail);
        } else if (ev.name === "retract") {
          live.textContent = ev.data.reason;
        } else if (ev.name === "replace") {
          // The model's text did not verify: the evidence replaces it, visibly.
          live.textContent = ev.data.answer;
          pending.insertBefore(kindBanner(ev.data.kind, ev.data.notice), live);
        } else if (ev.name === "done") {
          const data = ev.data;
          pending.remove();
          addMessage("assistant", data.answer, data.citations,
                     {guardrail: data.guardrail, closest: data.kind === "not_found" ? data.passages : [],
                      kind: data.kind, notice: data.notice});
        }
      }
    } catch (err) {
      pending.remove();
      addMessage("assistant error", "The request failed: " + err);
    } finally {
      send.disabled = false;
      input.focus();
    }
  });
})();
