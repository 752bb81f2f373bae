// Paperless meeting, the meeting page's part: the documents list with live rendering progress,
// the upload form (limits shown before the upload, upload progress, a translated message for
// every refusal), the search box and the agenda (agenda.js). Also the helpers the viewer uses:
// API URLs, the search hits, and the live events of the page's meeting socket.

import { ApiError, api, csrfToken } from "./api.js";
import { errorMessage, locale, _ } from "./i18n.js";
import { MEETING_EVENT } from "./socket.js";
import { $, busy, h, showMessage } from "./ui.js";

// ---- URLs (the REST contract) -------------------------------------------------------------

export const urls = {
  viewer(meetingId, documentId, { version, page } = {}) {
    const query = new URLSearchParams();
    if (version) query.set("version", version);
    if (page) query.set("page", page);
    const qs = query.toString();
    return `/meetings/${meetingId}/documents/${documentId}${qs ? `?${qs}` : ""}`;
  },
  document: (documentId) => `/api/documents/${documentId}`,
  page: (documentId, version, page, kind) => `/api/documents/${documentId}/versions/${version}/pages/${page}/${kind}`,
  file: (documentId, version) => `/api/documents/${documentId}/versions/${version}/file`,
  exported: (documentId, version) => `/api/documents/${documentId}/versions/${version}/export?layers=private,shared`,
  annotations: (documentId, version) => `/api/documents/${documentId}/versions/${version}/annotations`,
  documents: (meetingId) => `/api/meetings/${meetingId}/documents`,
  limits: (meetingId) => `/api/meetings/${meetingId}/documents/limits`,
  search: (meetingId, q) => `/api/meetings/${meetingId}/search?q=${encodeURIComponent(q)}`,
};

// ---- live events --------------------------------------------------------------------------

/** Calls `listener(event)` for every meeting event of the page's socket (socket.js), and
 * `listener({type: "joined"})` after a (re)join, when state may have been missed. */
export function onMeetingEvents(listener) {
  document.addEventListener(MEETING_EVENT, (e) => {
    try {
      listener(e.detail);
    } catch (err) {
      console.warn("meeting event listener failed", err); // one broken part must not stop the others
    }
  });
}

// ---- search ------------------------------------------------------------------------------

/** The snippet as text with its hit in <mark> (offsets count characters, never HTML). */
export function snippetNodes(snippet, highlight) {
  const chars = Array.from(String(snippet || ""));
  let [start, end] = Array.isArray(highlight) ? highlight.map(Number) : [0, 0];
  start = Math.max(0, Math.min(chars.length, start || 0));
  end = Math.max(start, Math.min(chars.length, end || 0));
  const nodes = [document.createTextNode(chars.slice(0, start).join(""))];
  if (end > start) nodes.push(h("mark", {}, chars.slice(start, end).join("")));
  nodes.push(document.createTextNode(chars.slice(end).join("")));
  return nodes;
}

/** Wires a search box: hits with highlighted snippets; `onHit(hit, event)` may open the page in
 * place (then it calls event.preventDefault()). */
export function setupSearch(root, meetingId, { onHit } = {}) {
  const form = $("#search-form", root);
  if (!form) return;
  const input = $("#search-q", root);
  const status = $("#search-status", root);
  const list = $("#search-hits", root);
  let controller = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = input.value.trim();
    list.replaceChildren();
    if (!q) {
      showMessage(status, "");
      return;
    }
    if (controller) controller.abort();
    controller = new AbortController();
    showMessage(status, _("Searching…"));
    try {
      const data = await api.get(urls.search(meetingId, q), { signal: controller.signal });
      const hits = (data && data.hits) || [];
      showMessage(status, hits.length ? _("Found on %(count)s pages.", { count: hits.length }) : _("Nothing found."));
      list.replaceChildren(...hits.map((hit) => {
        const link = h("a", { class: "hit", href: urls.viewer(meetingId, hit.document_id, hit) });
        link.append(h("span", { class: "hit-where" }, _("%(title)s · page %(page)s", { title: hit.title, page: hit.page })));
        link.append(h("span", { class: "hit-snippet" }));
        link.lastChild.append(...snippetNodes(hit.snippet, hit.highlight));
        link.dataset.documentId = hit.document_id;
        link.dataset.page = hit.page;
        if (onHit) link.addEventListener("click", (click) => onHit(hit, click));
        const item = h("li");
        item.append(link);
        return item;
      }));
    } catch (err) {
      if (err && err.name === "AbortError") return;
      showMessage(status, err.message);
    }
  });
}

// ---- upload ------------------------------------------------------------------------------

export function formatBytes(bytes) {
  const number = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  if (bytes >= 1024 * 1024) return `${number.format(bytes / (1024 * 1024))} MB`;
  if (bytes >= 1024) return `${number.format(bytes / 1024)} KB`;
  return `${number.format(bytes)} B`;
}

const WARNINGS = {
  repaired: () => _("The file was damaged and has been repaired: check that its pages look right."),
};

export function warningText(warning) {
  const code = typeof warning === "string" ? warning : (warning && (warning.code || warning.message)) || "";
  return WARNINGS[code] ? WARNINGS[code]() : String(code);
}

/** POST multipart with upload progress (fetch cannot report it): resolves to the JSON answer or
 * rejects with an ApiError carrying the translated message of the refusal code. */
export function uploadWithProgress(url, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Accept", "application/json");
    const token = csrfToken();
    if (token) xhr.setRequestHeader("X-CSRF-Token", token);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(data);
        return;
      }
      const error = (data && data.error) || {};
      const code = error.code || (xhr.status === 413 ? "file_too_large" : xhr.status >= 500 ? "internal" : "http_error");
      const details = error.details || {};
      reject(new ApiError(xhr.status, code, errorMessage(code, details, error.message), details));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", errorMessage("network"), {})));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "network", errorMessage("network"), {})));
    xhr.send(form);
  });
}

/** What the browser can tell before sending: the same codes the server would answer. */
export function precheck(file, limits) {
  if (!file) return "missing_file";
  if (file.size === 0) return "empty_file";
  const pdfName = /\.pdf$/i.test(file.name);
  if (!pdfName && file.type && file.type !== "application/pdf") return "not_pdf";
  if (limits && limits.max_bytes && file.size > limits.max_bytes) return "file_too_large";
  return null;
}

function limitsText(limits) {
  return _("PDF files only, at most %(size)s and %(pages)s pages per file.", {
    size: formatBytes(limits.max_bytes), pages: limits.max_pages,
  });
}

// ---- the meeting page ----------------------------------------------------------------------

function currentVersion(doc) {
  const versions = doc.versions || [];
  return versions.find((v) => v.version === doc.current_version) || versions[versions.length - 1] || null;
}

class DocumentsSection {
  constructor(root, data) {
    this.root = root;
    this.meetingId = data.meeting_id;
    this.canManage = data.can_manage;
    this.list = $("#doc-list", root);
    this.error = $("#documents-error", root);
    this.docs = [];
    this.progress = new Map(); // document id → {version, done, total}
    this.limits = null;
    this.reloadTimer = null;
  }

  async load() {
    try {
      const data = await api.get(urls.documents(this.meetingId));
      this.docs = (data && data.documents) || [];
      for (const doc of this.docs) {
        const v = currentVersion(doc);
        if (v) this.progress.set(doc.id, { version: v.version, done: v.rendered_pages || 0, total: v.page_count || 0 });
      }
      showMessage(this.error, "");
      this.render();
    } catch (err) {
      showMessage(this.error, err.message);
    }
  }

  reloadSoon() {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.load(), 300);
  }

  render() {
    const template = $("#doc-item");
    this.list.replaceChildren(...this.docs.map((doc) => {
      const item = template.content.firstElementChild.cloneNode(true);
      item.dataset.documentId = doc.id;
      const link = item.querySelector(".doc-title");
      link.textContent = doc.title;
      link.href = urls.viewer(this.meetingId, doc.id);
      const restricted = item.querySelector(".doc-restricted");
      restricted.hidden = doc.visibility !== "restricted";
      restricted.textContent = _("Restricted");
      const v = currentVersion(doc);
      item.querySelector(".doc-meta").textContent = v
        ? _("%(pages)s pages · version %(version)s · %(size)s", { pages: v.page_count, version: v.version, size: formatBytes(v.size_bytes || 0) })
        : "";
      this.renderProgress(item, doc.id);
      return item;
    }));
    $("#documents-empty", this.root).hidden = this.docs.length > 0;
  }

  renderProgress(item, documentId) {
    const state = this.progress.get(documentId);
    const bar = item.querySelector(".doc-progress");
    const text = item.querySelector(".doc-status-text");
    const ready = !state || (state.total > 0 && state.done >= state.total);
    item.dataset.ready = ready ? "true" : "false";
    bar.hidden = ready;
    if (!ready) {
      bar.max = Math.max(1, state.total);
      bar.value = state.done;
    }
    text.textContent = ready ? _("Ready") : _("Preparing pages: %(done)s/%(total)s", { done: state.done, total: state.total || "…" });
  }

  onEvent(event) {
    switch (event.type) {
      case "document.progress": {
        const item = this.list.querySelector(`[data-document-id="${Number(event.document_id)}"]`);
        if (!item) {
          this.reloadSoon(); // a document someone else just uploaded (if we may see it)
          return;
        }
        this.progress.set(event.document_id, { version: event.version, done: event.done, total: event.total });
        this.renderProgress(item, event.document_id);
        break;
      }
      case "document.ready": {
        const state = this.progress.get(event.document_id);
        if (state) state.done = state.total;
        this.reloadSoon();
        break;
      }
      case "document.version":
      case "documents.changed":
      case "document.deleted":
      case "joined":
        this.reloadSoon();
        break;
      default:
        break;
    }
  }

  setupUpload(agendaSelect) {
    const form = $("#upload-form", this.root);
    if (!form) return;
    this.agendaSelect = agendaSelect;
    const limitsEl = $("#upload-limits", form);
    api.get(urls.limits(this.meetingId)).then((limits) => {
      this.limits = limits;
      limitsEl.textContent = limitsText(limits);
    }).catch((err) => { limitsEl.textContent = err.message; });
    for (const radio of form.querySelectorAll("input[name=visibility]")) {
      radio.addEventListener("change", () => {
        $("#restricted-fields", form).hidden = form.elements.visibility.value !== "restricted";
      });
    }
    const error = $("#upload-error", form);
    const ok = $("#upload-ok", form);
    const progressBox = $("#upload-progress", form);
    const bar = $("#upload-bar", form);
    const progressText = $("#upload-progress-text", form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showMessage(error, "");
      ok.hidden = true;
      const file = form.elements.file.files[0];
      const refused = precheck(file, this.limits);
      if (refused) {
        showMessage(error, refused === "missing_file" ? _("Choose a PDF file to upload.") : errorMessage(refused, this.limits || {}));
        return;
      }
      const body = new FormData();
      body.append("file", file, file.name);
      const title = form.elements.title.value.trim();
      if (title) body.append("title", title);
      if (form.elements.agenda_item_id.value) body.append("agenda_item_id", form.elements.agenda_item_id.value);
      const visibility = form.elements.visibility.value;
      body.append("visibility", visibility);
      if (visibility === "restricted") {
        const roles = [...form.querySelectorAll("input[name=allowed_roles]:checked")].map((c) => c.value);
        const points = form.elements.allowed_points.value.split(/[\s,;]+/).filter(Boolean);
        body.append("allowed_roles", roles.join(","));
        body.append("allowed_points", points.join(","));
      }
      progressBox.hidden = false;
      bar.max = 1;
      bar.value = 0;
      progressText.textContent = _("Uploading… %(percent)s%%", { percent: 0 });
      await busy(form, async () => {
        try {
          const doc = await uploadWithProgress(urls.documents(this.meetingId), body, (loaded, total) => {
            bar.value = total ? loaded / total : 0;
            progressText.textContent = loaded >= total
              ? _("Uploaded; checking the file…")
              : _("Uploading… %(percent)s%%", { percent: Math.floor((100 * loaded) / total) });
          });
          progressBox.hidden = true;
          const warnings = [...(doc.warnings || []), ...((currentVersion(doc) || {}).warnings || [])];
          const unique = [...new Set(warnings.map(warningText))].filter(Boolean);
          ok.replaceChildren(h("p", {}, _("“%(title)s” was uploaded; its pages are being prepared.", { title: doc.title })));
          if (unique.length) {
            ok.className = "alert alert-warning";
            const list = h("ul");
            list.append(...unique.map((w) => h("li", {}, w)));
            ok.append(list);
          } else {
            ok.className = "alert alert-ok";
          }
          ok.hidden = false;
          form.reset();
          $("#restricted-fields", form).hidden = true;
          if (!this.docs.some((d) => d.id === doc.id)) this.docs.push(doc);
          const v = currentVersion(doc);
          if (v && !this.progress.has(doc.id)) {
            this.progress.set(doc.id, { version: v.version, done: v.rendered_pages || 0, total: v.page_count || 0 });
          }
          this.render();
        } catch (err) {
          progressBox.hidden = true;
          showMessage(error, err.message);
        }
      });
    });
  }
}

/** On the meeting page: who presents which document now, with one link to follow them. */
class PresentingNow {
  constructor(meetingId) {
    this.meetingId = meetingId;
    this.box = $("#presenting-now");
  }

  async load() {
    if (!this.box) return;
    try {
      const view = await api.get(`/api/meetings/${this.meetingId}/presenter`);
      if (!view.document_id) {
        this.box.hidden = true;
        return;
      }
      const doc = await api.get(urls.document(view.document_id));
      const name = view.presenter ? view.presenter.label : "";
      $("#presenting-now-text").textContent = name
        ? _("%(name)s is presenting “%(title)s”.", { name, title: doc.title })
        : _("“%(title)s” is being presented.", { title: doc.title });
      $("#presenting-now-link").href = `${urls.viewer(this.meetingId, view.document_id, view)}&follow=1`;
      this.box.hidden = false;
    } catch {
      this.box.hidden = true; // nothing presented, or a document this caller may not see
    }
  }

  onEvent(event) {
    if (event.type === "presenter.view" || event.type === "joined") {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.load(), 300);
    }
  }
}

function start() {
  const dataNode = $("#paperless-data");
  const root = $("#documents-section");
  if (!dataNode || !root) return;
  const data = JSON.parse(dataNode.textContent);
  const section = new DocumentsSection(root, data);
  const agendaSelect = $("#up-agenda");
  section.setupUpload(agendaSelect);
  setupSearch(root, data.meeting_id);
  onMeetingEvents((event) => section.onEvent(event));
  section.load();
  const presenting = new PresentingNow(data.meeting_id);
  onMeetingEvents((event) => presenting.onEvent(event));
  presenting.load();
  import("./agenda.js").then(({ Agenda }) => {
    const agenda = new Agenda($("#agenda-section"), {
      meetingId: data.meeting_id,
      canManage: data.can_manage,
      onItems(items) {
        if (!agendaSelect) return;
        const chosen = agendaSelect.value;
        const options = [agendaSelect.options[0]];
        const walk = (list, depth) => {
          for (const item of list) {
            options.push(h("option", { value: item.id }, `${"— ".repeat(depth)}${item.number}. ${item.title}`));
            walk(item.children || [], depth + 1);
          }
        };
        walk(items, 0);
        agendaSelect.replaceChildren(...options);
        agendaSelect.value = chosen;
      },
    });
    onMeetingEvents((event) => agenda.onEvent(event));
    agenda.load();
  });
}

start();
