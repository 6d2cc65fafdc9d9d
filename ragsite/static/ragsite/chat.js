"use strict";
(function () {
  const messages = document.getElementById("messages");
  const form = document.getElementById("ask");
  const input = document.getElementById("question");
  const send = document.getElementById("send");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  let conversationId = window.RAG.conversationId;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The answer text with [n] markers turned into links to its sources.
  function answerBody(text, citations, id) {
    const body = el("div", "body");
    const numbers = new Set(citations.map((c) => c.number));
    const parts = text.split(/(\[\d+\])/);
    for (const part of parts) {
      const m = part.match(/^\[(\d+)\]$/);
      if (m && numbers.has(Number(m[1]))) {
        const a = el("a", "cite", "[" + m[1] + "]");
        a.href = "#src-" + id + "-" + m[1];
        body.appendChild(a);
      } else {
        body.appendChild(document.createTextNode(part));
      }
    }
    return body;
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
      const quote = el("blockquote", null, (c.quote || c.text || "").slice(0, 600));
      li.appendChild(quote);
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
      box.appendChild(answerBody(text, citations || [], id));
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
    addMessage(m.role, m.content, m.citations);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    addMessage("user", question);
    input.value = "";
    send.disabled = true;
    const pending = addMessage("assistant pending", "Searching the documents and writing an answer…");
    try {
      const response = await fetch(window.RAG.askUrl, {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
        body: JSON.stringify({question: question, conversation_id: conversationId}),
      });
      const data = await response.json();
      pending.remove();
      if (!response.ok) {
        addMessage("assistant error", data.detail || JSON.stringify(data));
        return;
      }
      if (conversationId === null) {
        conversationId = data.conversation_id;
        const url = window.RAG.conversationUrl.replace("/0/", "/" + conversationId + "/");
        history.replaceState(null, "", url);
        const list = document.querySelector(".sidebar ul");
        list.querySelectorAll(".muted").forEach((n) => n.remove());
        const item = el("li", "current");
        const link = el("a", null, question.slice(0, 200));
        link.href = url;
        item.appendChild(link);
        list.prepend(item);
      }
      addMessage("assistant", data.answer, data.citations, {guardrail: data.guardrail, closest: data.found ? [] : data.passages});
    } catch (err) {
      pending.remove();
      addMessage("assistant error", "The request failed: " + err);
    } finally {
      send.disabled = false;
      input.focus();
    }
  });
})();
