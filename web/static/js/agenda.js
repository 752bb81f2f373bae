// The meeting's agenda: ordered items with sub-items, their documents, and the
// item under discussion, live (agenda.changed / agenda.current). The secretary and the chair add,
// edit, reorder, delete and publish items and set the current one; delegates see the published
// agenda only.

import { api, request } from "./api.js";
import { _ } from "./i18n.js";
import { $, busy, h, showMessage } from "./ui.js";

const base = (meetingId) => `/api/meetings/${meetingId}/agenda`;

/** Items numbered "1", "1.2", … in order (positions may have gaps). */
function numbered(items, prefix = "") {
  return [...items].sort((a, b) => a.position - b.position || a.id - b.id).map((item, index) => {
    const number = `${prefix}${index + 1}`;
    return { ...item, number, children: numbered(item.children || [], `${number}.`) };
  });
}

function findItem(items, id) {
  for (const item of items) {
    if (item.id === id) return item;
    const found = findItem(item.children || [], id);
    if (found) return found;
  }
  return null;
}

export class Agenda {
  constructor(root, { meetingId, canManage, onItems }) {
    this.root = root;
    this.meetingId = meetingId;
    this.canManage = canManage;
    this.onItems = onItems;
    this.items = [];
    this.currentId = null;
    this.published = false;
    this.editing = null;
    this.list = $("#agenda-list", root);
    this.error = $("#agenda-error", root);
    this.form = $("#agenda-form", root);
    this.publishButton = $("#agenda-publish", root);
    this.timer = null;
    if (this.form) this.form.addEventListener("submit", (event) => this.add(event));
    if (this.publishButton) this.publishButton.addEventListener("click", () => this.publish());
    this.list.addEventListener("click", (event) => this.onClick(event));
  }

  async load() {
    try {
      const data = await api.get(base(this.meetingId));
      this.items = numbered((data && data.items) || []);
      this.currentId = data ? data.current_item_id : null;
      this.published = Boolean(data && data.published);
      showMessage(this.error, "");
    } catch (err) {
      this.items = [];
      if (err.status !== 403 && err.status !== 404) showMessage(this.error, err.message);
    }
    this.render();
    if (this.onItems) this.onItems(this.items);
  }

  loadSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), 200);
  }

  onEvent(event) {
    if (event.type === "agenda.current") {
      this.currentId = event.item_id ?? null;
      this.render();
    } else if (["agenda.changed", "joined", "document.ready", "document.version", "document.deleted"].includes(event.type)) {
      // an item lists its documents: a new or replaced one changes it too
      this.loadSoon();
    }
  }

  render() {
    // An edit in progress survives a live refresh (another change of the agenda meanwhile).
    this.openForm = this.editing ? this.list.querySelector(`form.agenda-edit[data-item-id="${this.editing}"]`) : null;
    this.list.replaceChildren(...this.items.map((item) => this.renderItem(item, this.items)));
    const empty = $("#agenda-empty", this.root);
    empty.hidden = this.items.length > 0;
    empty.textContent = this.canManage ? _("No agenda items yet.") : _("The agenda has not been published yet.");
    const state = $("#agenda-state", this.root);
    state.hidden = !this.canManage || this.items.length === 0;
    state.textContent = this.published ? _("Published") : _("Draft");
    state.className = `badge ${this.published ? "state-open" : "state-scheduled"}`;
    if (this.publishButton) this.publishButton.hidden = this.published || this.items.length === 0;
    const current = this.currentId ? findItem(this.items, this.currentId) : null;
    $("#agenda-now", this.root).hidden = !current;
    $("#agenda-now-title", this.root).textContent = current ? `${current.number}. ${current.title}` : "";
    const parent = this.form && this.form.elements.parent_id;
    if (parent) {
      const chosen = parent.value;
      parent.replaceChildren(parent.options[0], ...this.items.map((item) => h("option", { value: item.id }, `${item.number}. ${item.title}`)));
      parent.value = chosen;
    }
  }

  renderItem(item, siblings) {
    const li = h("li", { class: "agenda-item", "data-item-id": item.id });
    if (item.id === this.currentId) li.dataset.current = "true";
    const row = h("div", { class: "agenda-row" });
    if (this.editing === item.id) {
      row.append(this.openForm || this.editForm(item));
    } else {
      row.append(h("span", { class: "agenda-number" }, `${item.number}.`));
      const body = h("div", { class: "agenda-body" });
      body.append(h("span", { class: "agenda-title" }, item.title));
      if (item.id === this.currentId) body.append(h("span", { class: "badge state-open agenda-current-badge" }, _("Now")));
      const meta = [];
      if (item.presenter) meta.push(_("Presented by %(name)s", { name: item.presenter }));
      if (item.duration_min) meta.push(_("%(minutes)s min", { minutes: item.duration_min }));
      if (meta.length) body.append(h("span", { class: "agenda-meta" }, meta.join(" · ")));
      if ((item.documents || []).length) {
        const docs = h("ul", { class: "agenda-docs" });
        docs.append(...item.documents.map((doc) => {
          const entry = h("li");
          entry.append(h("a", { href: `/meetings/${this.meetingId}/documents/${doc.id}` }, doc.title));
          return entry;
        }));
        body.append(docs);
      }
      row.append(body);
      if (this.canManage) row.append(this.actions(item, siblings));
    }
    li.append(row);
    if ((item.children || []).length) {
      const children = h("ol", { class: "agenda-list agenda-children" });
      children.append(...item.children.map((child) => this.renderItem(child, item.children)));
      li.append(children);
    }
    return li;
  }

  actions(item, siblings) {
    const box = h("div", { class: "agenda-actions" });
    const index = siblings.indexOf(item);
    const button = (action, label, title, disabled = false) =>
      h("button", { type: "button", class: "btn btn-small", "data-action": action, "data-item-id": item.id, title, "aria-label": title, disabled }, label);
    box.append(
      button("up", "↑", _("Move up"), index === 0),
      button("down", "↓", _("Move down"), index === siblings.length - 1),
      item.id === this.currentId
        ? button("uncurrent", _("Done"), _("End the discussion of this item"))
        : button("current", _("Discuss now"), _("Show this item to everyone as under discussion")),
      button("edit", _("Edit"), _("Edit")),
      button("delete", _("Delete"), _("Delete")),
    );
    return box;
  }

  editForm(item) {
    const form = h("form", { class: "agenda-edit", "data-item-id": item.id });
    const field = (name, label, value, attrs = {}) => {
      const wrap = h("label", { class: "agenda-edit-field" });
      wrap.append(h("span", {}, label), h("input", { name, value: value ?? "", ...attrs }));
      return wrap;
    };
    form.append(
      field("title", _("Title"), item.title, { required: true, maxlength: 500 }),
      field("presenter", _("Presented by"), item.presenter, { maxlength: 200 }),
      field("duration_min", _("Duration (minutes)"), item.duration_min, { type: "number", min: 0, max: 600 }),
    );
    const actions = h("div", { class: "form-actions" });
    actions.append(h("button", { type: "submit", class: "btn btn-primary btn-small" }, _("Save")),
      h("button", { type: "button", class: "btn btn-small", "data-action": "cancel" }, _("Cancel")));
    form.append(actions);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save(form, item);
    });
    return form;
  }

  fields(form) {
    const out = { title: form.elements.title.value.trim(), presenter: form.elements.presenter.value.trim() };
    const minutes = form.elements.duration_min.value.trim();
    out.duration_min = minutes === "" ? null : Number(minutes);
    return out;
  }

  async run(work) {
    showMessage(this.error, "");
    try {
      await work();
      await this.load();
    } catch (err) {
      showMessage(this.error, err.message);
    }
  }

  async add(event) {
    event.preventDefault();
    const form = this.form;
    const body = this.fields(form);
    if (!body.title) {
      showMessage(this.error, _("Please enter a title (at most 500 characters)."));
      return;
    }
    if (body.duration_min === null) delete body.duration_min;
    if (!body.presenter) delete body.presenter;
    if (form.elements.parent_id.value) body.parent_id = Number(form.elements.parent_id.value);
    await busy(form, () => this.run(async () => {
      await api.post(base(this.meetingId), body);
      form.reset();
      form.elements.title.focus();
    }));
  }

  async save(form, item) {
    await busy(form, () => this.run(async () => {
      await request("PATCH", `${base(this.meetingId)}/${item.id}`, { json: this.fields(form) });
      this.editing = null;
    }));
  }

  async publish() {
    await this.run(() => api.post(`${base(this.meetingId)}/publish`));
  }

  async onClick(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const form = button.closest("form.agenda-edit");
    if (button.dataset.action === "cancel" && form) {
      this.editing = null;
      this.render();
      return;
    }
    const id = Number(button.dataset.itemId);
    const item = findItem(this.items, id);
    if (!item) return;
    switch (button.dataset.action) {
      case "edit":
        this.editing = id;
        this.render();
        $(`form.agenda-edit[data-item-id="${id}"] input[name=title]`, this.list).focus();
        break;
      case "delete":
        if (window.confirm(_("Delete the agenda item “%(title)s”?", { title: item.title }))) {
          await this.run(() => request("DELETE", `${base(this.meetingId)}/${id}`));
        }
        break;
      case "current":
      case "uncurrent":
        await this.run(() => api.post(`${base(this.meetingId)}/current`, { item_id: button.dataset.action === "current" ? id : null }));
        break;
      case "up":
      case "down":
        await this.run(() => api.post(`${base(this.meetingId)}/reorder`, { item_ids: this.reordered(item, button.dataset.action === "up" ? -1 : 1) }));
        break;
      default:
        break;
    }
  }

  /** The ids of the item's siblings in their new order. */
  reordered(item, step) {
    const siblings = item.parent_id ? findItem(this.items, item.parent_id).children : this.items;
    const ids = siblings.map((s) => s.id);
    const index = ids.indexOf(item.id);
    const other = index + step;
    if (other < 0 || other >= ids.length) return ids;
    [ids[index], ids[other]] = [ids[other], ids[index]];
    return ids;
  }
}
