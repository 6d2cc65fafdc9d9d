// The original of a cited document, shown in the source viewer (chat.js loads
// this module when a source is first opened). A PDF is drawn page by page by
// PDF.js (vendored, vendor/pdfjs/), at the cited page, zoomable, its text
// selectable (a text layer over the drawing), with the cited sentence
// highlighted from the boxes of its characters (the server finds them with
// PDFium: /citations/<id>/boxes). Other originals come as
// HTML the server sanitised (chat/originals.py); the cited sentence is
// found in their text and marked, and the view scrolled to it.

let library = null;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(label, text, onClick) {
  const b = el("button", "small", text);
  b.type = "button";
  b.setAttribute("aria-label", label);
  b.title = label;
  b.addEventListener("click", onClick);
  return b;
}

async function pdfjs(config) {
  if (!library) {
    library = import(config.pdfjs).then((lib) => {
      lib.GlobalWorkerOptions.workerSrc = config.worker;
      return lib;
    });
  }
  return library;
}

const ZOOMS = [0.5, 0.67, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 1.75, 2, 2.5, 3, 4];

// One PDF in the viewer: its pages drawn into `host` one at a time, with a
// toolbar in `bar` (page, zoom, fit to width).
class PdfView {
  constructor(lib, host, bar, doc, cited, loading) {
    this.lib = lib;
    this.loading = loading;
    this.host = host;
    this.bar = bar;
    this.doc = doc;
    this.cited = cited;  // {page, boxes: [[left, bottom, right, top], ...]} in PDF points
    this.number = Math.min(Math.max(cited.page || 1, 1), doc.numPages);
    this.zoom = "start";  // readable: 100%, or the width of the panel when that is larger
    this.scale = 1;
    this.task = null;
    this.sheet = el("div", "pdf-page");
    this.canvas = el("canvas");
    this.canvas.setAttribute("role", "img");
    // The page's words over the drawing, invisible but selectable and searchable (PDF.js's TextLayer).
    this.words = el("div", "textLayer");
    this.text = null;
    this.sheet.append(this.canvas, this.words);
    host.replaceChildren(this.sheet);
    this.toolbar();
  }

  toolbar() {
    this.previous = button("Previous page", "‹", () => this.go(this.number - 1));
    this.next = button("Next page", "›", () => this.go(this.number + 1));
    this.where = el("span", "pdf-where");
    this.where.setAttribute("aria-live", "polite");
    this.smaller = button("Zoom out", "−", () => this.step(-1));
    this.larger = button("Zoom in", "+", () => this.step(1));
    this.level = el("span", "pdf-zoom");
    this.fit = button("Fit to width", "Fit", () => { this.zoom = "fit"; this.draw(); });
    this.bar.replaceChildren(this.previous, this.where, this.next, el("span", "bar-gap"),
                             this.smaller, this.level, this.larger, this.fit);
    this.bar.hidden = false;
  }

  fitScale(page) {
    const width = page.getViewport({scale: 1}).width;
    return Math.max(0.25, (this.host.clientWidth - 4) / width);
  }

  step(direction) {
    const now = this.scale;
    const found = direction > 0 ? ZOOMS.find((z) => z > now + 0.01) : [...ZOOMS].reverse().find((z) => z < now - 0.01);
    if (found) { this.zoom = found; this.draw(); }
  }

  go(number) {
    if (number < 1 || number > this.doc.numPages) return;
    this.number = number;
    this.draw(true);
  }

  // Draw the current page at the current zoom; `top`: scroll to its top (a new page).
  async draw(top) {
    if (this.task) this.task.cancel();
    if (this.text) this.text.cancel();
    const page = await this.doc.getPage(this.number);
    if (this.zoom === "start") this.zoom = this.fitScale(page) < 1 ? 1 : "fit";
    const scale = this.zoom === "fit" ? this.fitScale(page) : this.zoom;
    const viewport = page.getViewport({scale: scale});
    const ratio = window.devicePixelRatio || 1;
    const keep = {x: this.host.scrollLeft / (this.host.scrollWidth || 1), y: this.host.scrollTop / (this.host.scrollHeight || 1)};
    this.canvas.width = Math.floor(viewport.width * ratio);
    this.canvas.height = Math.floor(viewport.height * ratio);
    this.sheet.style.width = Math.floor(viewport.width) + "px";
    this.sheet.style.height = Math.floor(viewport.height) + "px";
    this.canvas.setAttribute("aria-label", "Page " + this.number + " of the PDF");
    this.task = page.render({canvas: this.canvas, viewport: viewport, transform: ratio === 1 ? null : [ratio, 0, 0, ratio, 0, 0]});
    try {
      await this.task.promise;
    } catch (err) {
      if (err && err.name === "RenderingCancelledException") return;
      throw err;
    }
    this.task = null;
    this.drawText(page, viewport);
    const first = !this.drawn || this.recentre;
    this.recentre = false;
    this.scale = scale;
    this.drawn = true;
    this.highlight(viewport);
    this.where.textContent = "Page " + this.number + " of " + this.doc.numPages;
    this.level.textContent = Math.round(scale * 100) + "%";
    this.previous.disabled = this.number <= 1;
    this.next.disabled = this.number >= this.doc.numPages;
    this.smaller.disabled = scale <= ZOOMS[0] + 0.01;
    this.larger.disabled = scale >= ZOOMS[ZOOMS.length - 1] - 0.01;
    const mark = this.sheet.querySelector(".pdf-mark");
    if (first && mark) centre(this.host, mark);
    else if (top) this.host.scrollTop = 0;
    else { this.host.scrollLeft = keep.x * this.host.scrollWidth; this.host.scrollTop = keep.y * this.host.scrollHeight; }
  }

  // The page's text as a layer of transparent spans where PDF.js drew each run
  // (a page without a text layer, a scan read by no OCR, has none: nothing to select).
  drawText(page, viewport) {
    this.words.replaceChildren();
    this.words.style.setProperty("--total-scale-factor", String(viewport.scale));
    this.text = new this.lib.TextLayer({textContentSource: page.streamTextContent(), container: this.words, viewport: viewport});
    this.text.render().catch((err) => {
      if (!err || err.name !== "AbortException") console.warn("The page's text could not be laid out:", err);
    });
  }

  // The cited sentence's boxes over the page, where PDF.js drew its characters.
  highlight(viewport) {
    this.sheet.querySelectorAll(".pdf-mark").forEach((n) => n.remove());
    if (this.number !== this.cited.page) return;
    for (const [left, bottom, right, top] of this.cited.boxes || []) {
      const [x1, y1] = viewport.convertToViewportPoint(left, top);
      const [x2, y2] = viewport.convertToViewportPoint(right, bottom);
      const box = el("div", "pdf-mark");
      box.style.left = (Math.min(x1, x2) - 1) + "px";
      box.style.top = (Math.min(y1, y2) - 1) + "px";
      box.style.width = (Math.abs(x2 - x1) + 2) + "px";
      box.style.height = (Math.abs(y2 - y1) + 2) + "px";
      this.sheet.appendChild(box);
    }
  }

  // The panel changed size: a page fitted to it is fitted again; `restart`: back to the opening zoom.
  refit(restart) {
    if (restart) { this.zoom = "start"; this.recentre = true; }
    if (this.zoom === "fit" || this.zoom === "start") this.draw();
  }

  close() {
    if (this.task) this.task.cancel();
    if (this.text) this.text.cancel();
    this.loading.destroy();
  }
}

// Scroll `host` so that `node` sits a third of the way down it, and in view sideways.
function centre(host, node) {
  const box = host.getBoundingClientRect(), at = node.getBoundingClientRect();
  host.scrollTop += at.top - box.top - Math.max(8, (host.clientHeight - at.height) / 3);
  if (at.left < box.left || at.right > box.right) host.scrollLeft += at.left - box.left - 16;
}

export async function showPdf(host, bar, config, source) {
  const lib = await pdfjs(config);
  const cited = {page: source.page || 1, boxes: []};
  const loading = lib.getDocument({url: source.original_url.split("#")[0], standardFontDataUrl: config.fonts,
                                  cMapUrl: config.cmaps, cMapPacked: true, disableAutoFetch: true, enableXfa: false});
  const [doc, where] = await Promise.all([
    loading.promise,
    source.boxes_url
      ? fetch(source.boxes_url, {headers: {"Accept": "application/json"}}).then((r) => (r.ok ? r.json() : null)).catch(() => null)
      : null,
  ]);
  if (where) Object.assign(cited, {page: where.page, boxes: where.boxes});
  const view = new PdfView(lib, host, bar, doc, cited, loading);
  await view.draw();
  return view;
}

// Letters and digits only, lower-cased: the same sentence in Markdown, in
// HTML or broken over lines compares equal.
const KEPT = /[\p{L}\p{N}]/u;

// The text of `root` as one string of kept characters, with where each came from.
function textOf(root) {
  const nodes = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let total = 0;
  for (let n = walker.nextNode(); n; n = walker.nextNode()) { nodes.push(n); total += n.data.length; }
  const node = new Int32Array(total), offset = new Int32Array(total);
  const chars = [];
  let k = 0;
  nodes.forEach((n, i) => {
    const data = n.data;
    for (let j = 0; j < data.length; j++) {
      const ch = data[j];
      if (KEPT.test(ch)) { chars.push(ch.toLowerCase()); node[k] = i; offset[k] = j; k++; }
    }
  });
  return {text: chars.join(""), nodes: nodes, node: node, offset: offset};
}

function kept(text) {
  let out = "";
  for (const ch of text) if (KEPT.test(ch)) out += ch.toLowerCase();
  return out;
}

// Where `wanted` is in `haystack`, or the longest leading run of its words
// that is (a sentence the page breaks differently, or that runs on past
// what is shown): a run found means every shorter one is, so search by halves.
function locate(haystack, wanted) {
  const words = wanted.split(/\s+/).filter((w) => kept(w));
  const whole = kept(wanted);
  if (!whole) return null;
  let at = haystack.indexOf(whole);
  if (at >= 0) return [at, whole.length];
  let low = Math.min(4, words.length), high = words.length - 1, best = null;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const part = kept(words.slice(0, middle).join(" "));
    at = haystack.indexOf(part);
    if (at >= 0) { best = [at, part.length]; low = middle + 1; } else { high = middle - 1; }
  }
  return best;
}

// Mark `wanted` in `root` (each piece of text it spans wrapped in <mark class="cited">); the marks, first first.
export function markText(root, wanted) {
  const all = textOf(root);
  const found = locate(all.text, wanted || "");
  if (!found) return [];
  const [start, length] = found;
  const first = all.node[start], last = all.node[start + length - 1];
  const tail = all.nodes[last].data;
  let end = all.offset[start + length - 1] + 1;
  while (end < tail.length && /[^\s\p{L}\p{N}]/u.test(tail[end])) end++;  // the sentence's own full stop
  const marks = [];
  // Every piece of text from the first kept character to the last, piece by
  // piece (a mark cannot cross an element), but the blanks between blocks.
  for (let i = first; i <= last; i++) {
    const node = all.nodes[i];
    const from = i === first ? all.offset[start] : 0, to = i === last ? end : node.data.length;
    if (!node.data.slice(from, to).trim()) continue;
    const range = document.createRange();
    range.setStart(node, from);
    range.setEnd(node, to);
    const mark = el("mark", "cited");
    range.surroundContents(mark);
    marks.push(mark);
  }
  return marks;
}

export async function showDocument(host, bar, source, wanted) {
  const response = await fetch(source.original_url, {headers: {"Accept": "application/json"}});
  if (!response.ok) throw new Error(String(response.status));
  const data = await response.json();
  bar.hidden = true;
  if (!data.format) return {reason: data.reason || "This original cannot be shown here.", close() {}, refit() {}};
  const page = el("div", "original-page original-" + data.format);
  page.innerHTML = data.html;  // sanitised by the server (chat/originals.py)
  host.replaceChildren(page);
  const marks = markText(page, wanted);
  if (marks.length) centre(host, marks[0]);
  else host.scrollTop = 0;
  return {marks: marks.length, close() {}, refit() {}};  // text reflows by itself
}
