// Annotations on a page image: an SVG overlay whose coordinates are the
// page's own, normalised 0..1 from the top-left corner (the REST contract), so they stay in place
// at any zoom and on any screen. Tools: freehand ink, highlight rectangle, text note, arrow.
// Annotator draws and collects shapes; AnnotationPanel loads and saves them (the caller's private
// layer and the shared one), lists the page's annotations and lets their authors edit or delete.

import { api, request } from "./api.js";
import { urls } from "./documents.js";
import { _ } from "./i18n.js";
import { $, h, showMessage } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";
const XHTML = "http://www.w3.org/1999/xhtml";
const UNITS = 1000; // the page's width in SVG user units; the height follows its aspect
export const INK_WIDTH = 2; // line widths are in PDF points (as the exported PDF draws them)
export const ARROW_WIDTH = 3;
const MIN_SIZE = 0.004; // a rectangle or arrow smaller than this is a slip of the finger

function el(tag, attrs = {}) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

const round = (value) => Math.round(Math.min(1, Math.max(0, value)) * 10000) / 10000;

export class Annotator {
  /**
   * @param {SVGSVGElement} svg the overlay, exactly on top of the page image
   * @param {object} options onCreate({kind, data}) for a finished shape (a note only gives
   *   `at`: the viewer asks for its text); onSelect(id) when a shape is clicked.
   */
  constructor(svg, { onCreate, onSelect }) {
    this.svg = svg;
    this.onCreate = onCreate;
    this.onSelect = onSelect;
    this.tool = "none";
    this.color = "#d32f2f";
    this.aspect = 1.414;
    this.widthPt = 595;
    this.drawing = null;
    this.selected = null;
    this.layer = el("g", { class: "ann-layer" });
    this.preview = el("g", { class: "ann-preview" });
    svg.append(this.layer, this.preview);
    svg.addEventListener("pointerdown", (event) => this.down(event));
    svg.addEventListener("pointermove", (event) => this.move(event));
    svg.addEventListener("pointerup", (event) => this.up(event));
    svg.addEventListener("pointercancel", () => this.cancel());
    this.layer.addEventListener("click", (event) => {
      const group = event.target.closest("[data-annotation-id]");
      if (group && this.tool === "none") this.onSelect(Number(group.dataset.annotationId));
    });
  }

  /** The page's size in PDF points: its aspect, and the scale of line widths. */
  setPage(widthPt, heightPt) {
    this.widthPt = widthPt > 0 ? widthPt : 595;
    const aspect = heightPt / this.widthPt;
    this.aspect = aspect > 0 ? aspect : 1.414;
    this.svg.setAttribute("viewBox", `0 0 ${UNITS} ${UNITS * this.aspect}`);
    this.svg.setAttribute("preserveAspectRatio", "none");
  }

  setTool(tool) {
    this.cancel();
    this.tool = tool;
    this.svg.dataset.tool = tool;
  }

  x(value) {
    return value * UNITS;
  }

  y(value) {
    return value * UNITS * this.aspect;
  }

  /** A width in PDF points, in SVG user units. */
  pt(value) {
    return (value * UNITS) / this.widthPt;
  }

  point(event) {
    const box = this.svg.getBoundingClientRect();
    return [round((event.clientX - box.left) / box.width), round((event.clientY - box.top) / box.height)];
  }

  // ---- drawing -----------------------------------------------------------------------------

  down(event) {
    if (this.tool === "none" || event.button > 0) return;
    event.preventDefault();
    const at = this.point(event);
    if (this.tool === "note") {
      this.onCreate({ kind: "note", data: { at } });
      return;
    }
    this.svg.setPointerCapture(event.pointerId);
    this.drawing = { kind: this.tool, start: at, points: [at], end: at };
    this.drawPreview();
  }

  move(event) {
    if (!this.drawing) return;
    const at = this.point(event);
    const last = this.drawing.points[this.drawing.points.length - 1];
    if (this.drawing.kind === "ink" && Math.hypot(at[0] - last[0], at[1] - last[1]) < 0.002) return;
    this.drawing.points.push(at);
    this.drawing.end = at;
    this.drawPreview();
  }

  up(event) {
    if (!this.drawing) return;
    this.drawing.end = this.point(event);
    const shape = this.finish(this.drawing);
    this.cancel();
    if (shape) this.onCreate(shape);
  }

  cancel() {
    this.drawing = null;
    this.preview.replaceChildren();
  }

  finish(drawing) {
    const [x0, y0] = drawing.start;
    const [x1, y1] = drawing.end;
    const color = this.color;
    if (drawing.kind === "ink") {
      const stroke = drawing.points.length > 1 ? drawing.points : [drawing.start, [round(x0 + 0.001), y0]];
      return { kind: "ink", data: { strokes: [stroke], color, width: INK_WIDTH } };
    }
    if (Math.abs(x1 - x0) < MIN_SIZE && Math.abs(y1 - y0) < MIN_SIZE) return null;
    if (drawing.kind === "highlight") {
      return { kind: "highlight", data: { rect: [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)], color } };
    }
    return { kind: "arrow", data: { from: [x0, y0], to: [x1, y1], color, width: ARROW_WIDTH } };
  }

  drawPreview() {
    const d = this.drawing;
    const data = this.finish({ ...d }) || { kind: d.kind, data: { strokes: [d.points], color: this.color, width: INK_WIDTH } };
    this.preview.replaceChildren(this.shape({ id: 0, kind: data.kind, data: data.data, layer: "private" }));
  }

  // ---- showing -----------------------------------------------------------------------------

  /** Draws the annotations of the page shown (each with id, kind, layer, data). */
  show(annotations) {
    this.layer.replaceChildren(...annotations.map((annotation) => this.shape(annotation)));
    this.select(this.selected);
  }

  select(id) {
    this.selected = id;
    for (const group of this.layer.querySelectorAll("[data-annotation-id]")) {
      group.classList.toggle("selected", Number(group.dataset.annotationId) === id);
    }
  }

  shape(annotation) {
    const data = annotation.data || {};
    const color = /^#[0-9a-f]{6}$/i.test(data.color || "") ? data.color : "#d32f2f";
    const group = el("g", { class: `ann ann-${annotation.kind} layer-${annotation.layer}`, "data-annotation-id": annotation.id,
      "data-kind": annotation.kind, "data-layer": annotation.layer });
    switch (annotation.kind) {
      case "ink":
        for (const stroke of data.strokes || []) {
          group.append(el("polyline", { points: stroke.map(([x, y]) => `${this.x(x)},${this.y(y)}`).join(" "),
            fill: "none", stroke: color, "stroke-width": this.pt(data.width || INK_WIDTH), "stroke-linecap": "round", "stroke-linejoin": "round" }));
        }
        break;
      case "highlight": {
        const [x0, y0, x1, y1] = data.rect || [0, 0, 0, 0];
        group.append(el("rect", { x: this.x(x0), y: this.y(y0), width: this.x(x1 - x0), height: this.y(y1 - y0), fill: color, "fill-opacity": 0.35 }));
        break;
      }
      case "arrow": {
        const [x0, y0] = data.from || [0, 0];
        const [x1, y1] = data.to || [0, 0];
        const width = this.pt(data.width || ARROW_WIDTH);
        const [ax, ay, bx, by] = [this.x(x0), this.y(y0), this.x(x1), this.y(y1)];
        const angle = Math.atan2(by - ay, bx - ax);
        const head = 14 + width * 3;
        const wing = (side) => `${bx - head * Math.cos(angle + side * 0.45)},${by - head * Math.sin(angle + side * 0.45)}`;
        const shaftEnd = [bx - head * 0.8 * Math.cos(angle), by - head * 0.8 * Math.sin(angle)];
        group.append(el("line", { x1: ax, y1: ay, x2: shaftEnd[0], y2: shaftEnd[1], stroke: color, "stroke-width": width, "stroke-linecap": "round" }));
        group.append(el("polygon", { points: `${bx},${by} ${wing(1)} ${wing(-1)}`, fill: color }));
        break;
      }
      case "note": {
        const [x, y] = data.at || [0, 0];
        const box = el("foreignObject", { x: Math.min(this.x(x), UNITS - 380), y: this.y(y), width: 380, height: 240, class: "ann-note-box" });
        const div = document.createElementNS(XHTML, "div");
        div.className = "note-sticky";
        div.textContent = data.text || "";
        box.append(div);
        group.append(el("circle", { cx: this.x(x), cy: this.y(y), r: 9, class: "note-pin" }), box);
        break;
      }
      default:
        break;
    }
    return group;
  }
}

// ---- the panel: load, save, list, edit, delete -------------------------------------------------

const KIND_LABELS = { ink: () => _("Pen"), highlight: () => _("Highlight"), note: () => _("Note"), arrow: () => _("Arrow") };
const YELLOW = "#ffd600";

function authorLabel(annotation) {
  const author = annotation.author;
  if (typeof author === "string") return author;
  return (author && (author.label || author.display_name)) || "";
}

export class AnnotationPanel {
  /**
   * @param {Document} root the viewer page (#annotations, #note-list, #note-form, the tools)
   * @param {object} options userId (the caller, for "mine" when the API does not say);
   *   where() → {documentId, version, page} shown now.
   */
  constructor(root, { userId, where }) {
    this.userId = userId;
    this.where = where;
    this.items = [];
    this.editing = null; // an annotation being edited, or {at} for a new note
    this.timer = null;
    this.error = $("#note-error", root);
    this.list = $("#note-list", root);
    this.form = $("#note-form", root);
    this.layer = $("#tool-layer", root);
    this.annotator = new Annotator($("#annotations", root), {
      onCreate: (shape) => (shape.kind === "note" ? this.openNote({ at: shape.data.at }) : this.create(shape)),
      onSelect: (id) => {
        this.annotator.select(id);
        this.render();
        const item = this.list.querySelector(`[data-annotation-id="${id}"]`);
        if (item) item.scrollIntoView({ block: "nearest" });
      },
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveNote();
    });
    $("#note-cancel", root).addEventListener("click", () => this.closeNote());
    this.list.addEventListener("click", (event) => this.onListClick(event));
    const color = $("#tool-color", root);
    for (const radio of root.querySelectorAll("#tool-choice input[name=tool]")) {
      radio.addEventListener("change", () => {
        this.annotator.setTool(radio.value);
        // a highlighter is yellow, a pen or an arrow is not (unless the user chose otherwise)
        if (radio.value === "highlight" && color.value !== YELLOW) color.value = YELLOW;
        else if ((radio.value === "ink" || radio.value === "arrow") && color.value === YELLOW) color.value = "#d32f2f";
        this.annotator.color = color.value;
      });
    }
    color.addEventListener("change", () => { this.annotator.color = color.value; });
    this.annotator.color = color.value;
  }

  isMine(annotation) {
    if (typeof annotation.mine === "boolean") return annotation.mine;
    const author = annotation.author || {};
    const id = author.user_id ?? author.id ?? annotation.author_id ?? annotation.user_id ?? annotation.created_by;
    return id !== undefined && id !== null && id === this.userId;
  }

  clear() {
    this.items = [];
    this.closeNote();
  }

  async load() {
    const { documentId, version } = this.where();
    try {
      const answer = await api.get(urls.annotations(documentId, version));
      if (version !== this.where().version) return; // the viewer moved to another version meanwhile
      this.items = (answer && answer.annotations) || [];
      showMessage(this.error, "");
    } catch (err) {
      showMessage(this.error, err.message);
    }
    this.render();
  }

  loadSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), 150);
  }

  render() {
    const page = this.where().page;
    const here = this.items.filter((a) => a.page === page);
    this.annotator.show(here);
    this.list.replaceChildren(...here.map((annotation) => this.entry(annotation)));
    $("#notes-empty").hidden = here.length > 0;
  }

  entry(annotation) {
    const item = h("li", { class: "note-item", "data-annotation-id": annotation.id, "data-layer": annotation.layer });
    const head = h("div", { class: "note-head" });
    head.append(h("span", { class: "note-kind" }, KIND_LABELS[annotation.kind] ? KIND_LABELS[annotation.kind]() : annotation.kind),
      h("span", { class: `badge layer-badge layer-${annotation.layer}` }, annotation.layer === "shared" ? _("Shared") : _("Private")));
    const who = authorLabel(annotation);
    if (who) head.append(h("span", { class: "note-author" }, who));
    item.append(head);
    if (annotation.kind === "note") item.append(h("p", { class: "note-text" }, (annotation.data || {}).text || ""));
    if (this.isMine(annotation)) {
      const actions = h("div", { class: "note-actions" });
      if (annotation.kind === "note") actions.append(h("button", { type: "button", class: "btn btn-small", "data-action": "edit" }, _("Edit")));
      actions.append(h("button", { type: "button", class: "btn btn-small", "data-action": "delete" }, _("Delete")));
      item.append(actions);
    }
    if (annotation.id === this.annotator.selected) item.classList.add("selected");
    return item;
  }

  async create(shape) {
    const { documentId, version, page } = this.where();
    const layer = this.layer.value === "shared" ? "shared" : "private";
    try {
      const created = await api.post(urls.annotations(documentId, version), { layer, kind: shape.kind, page, data: shape.data });
      if (created && !this.items.some((a) => a.id === created.id)) this.items.push(created);
      showMessage(this.error, "");
      this.render();
    } catch (err) {
      showMessage(this.error, err.message);
    }
  }

  openNote(target, text = "") {
    this.editing = target;
    this.form.hidden = false;
    this.form.elements[0].value = text;
    this.form.elements[0].focus();
  }

  closeNote() {
    this.form.hidden = true;
    this.editing = null;
  }

  async saveNote() {
    const text = this.form.elements[0].value.trim();
    const target = this.editing;
    if (!text || !target) return;
    this.closeNote();
    if (!target.id) {
      await this.create({ kind: "note", data: { at: target.at, text } });
      return;
    }
    try {
      const updated = await request("PATCH", `/api/annotations/${target.id}`, { json: { data: { ...target.data, text } } });
      const index = this.items.findIndex((a) => a.id === target.id);
      if (index >= 0) this.items[index] = updated && updated.id ? updated : { ...target, data: { ...target.data, text } };
      this.render();
    } catch (err) {
      showMessage(this.error, err.message);
    }
  }

  async onListClick(event) {
    const button = event.target.closest("button[data-action]");
    const item = event.target.closest(".note-item");
    if (!item) return;
    const id = Number(item.dataset.annotationId);
    const annotation = this.items.find((a) => a.id === id);
    if (!button) {
      this.annotator.select(id);
      this.render();
      return;
    }
    if (!annotation) return;
    if (button.dataset.action === "edit") {
      this.openNote(annotation, (annotation.data || {}).text || "");
    } else if (button.dataset.action === "delete" && window.confirm(_("Delete this annotation?"))) {
      try {
        await request("DELETE", `/api/annotations/${id}`);
        this.items = this.items.filter((a) => a.id !== id);
        this.render();
      } catch (err) {
        showMessage(this.error, err.message);
      }
    }
  }
}
