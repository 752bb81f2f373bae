// The document viewer: page images by immutable URLs (cached by the browser), a
// lazy thumbnail strip, zoom, presenter follow (follow.js), annotations (annotate.js), search,
// versions, and the downloads. Built for slow commune links and 200+ page documents: only the
// page shown and its neighbour are fetched; thumbnails load as they scroll into view.

import { api } from "./api.js";
import { AnnotationPanel } from "./annotate.js";
import { onMeetingEvents, precheck, setupSearch, uploadWithProgress, urls, warningText } from "./documents.js";
import { Follow } from "./follow.js";
import { errorMessage, _ } from "./i18n.js";
import { MeetingSocket } from "./socket.js";
import { $, h, showMessage } from "./ui.js";

const data = JSON.parse($("#viewer-data").textContent);
const ZOOMS = [1, 1.25, 1.5, 2, 3, 4];
const THUMB_WIDTH = 96;
const stage = $("#stage");
const wrap = $("#page-wrap");
const image = $("#page-img");
const viewerError = $("#viewer-error");
const storeKey = (name) => `diemcau.${name}.${data.meeting_id}`;

const state = {
  doc: null,
  version: null, // the version shown (a number)
  page: 1,
  zoom: 1,
  stale: new Set(), // "kind:page" images fetched before the page was rendered (placeholders)
};

// ---- the document and its versions ---------------------------------------------------------

function versionInfo(version = state.version) {
  return (state.doc.versions || []).find((v) => v.version === version) || null;
}

function pageSize(page) {
  const info = versionInfo();
  const size = info && (info.pages || []).find((p) => p.page === page);
  return size ? [size.width_pt, size.height_pt] : [595, 842];
}

function pageCount() {
  const info = versionInfo();
  return info ? info.page_count : 0;
}

function isRendered(page) {
  const info = versionInfo();
  return !info || info.rendered_pages === undefined || page <= info.rendered_pages;
}

function imageUrl(page, kind) {
  const url = urls.page(state.doc.id, state.version, page, kind);
  return state.stale.has(`${kind}:${page}`) && isRendered(page) ? `${url}?r=${Date.now()}` : url;
}

async function loadDocument() {
  state.doc = await api.get(urls.document(data.document_id));
  $("#doc-title").textContent = state.doc.title;
  document.title = document.title.replace(/^[^·]*·/, `${state.doc.title} ·`);
}

function renderVersions() {
  const select = $("#version-select");
  const versions = [...(state.doc.versions || [])].sort((a, b) => b.version - a.version);
  select.replaceChildren(...versions.map((v) => h("option", { value: v.version }, v.version === state.doc.current_version
    ? _("Version %(version)s (current)", { version: v.version })
    : _("Version %(version)s", { version: v.version }))));
  select.value = String(state.version);
  select.hidden = versions.length < 2;
  const notice = $("#version-notice");
  const newest = state.doc.current_version;
  if (state.version !== newest) {
    $("#version-notice-text").textContent = _("A newer version (version %(version)s) of this document exists. Your notes stay on the version they were made on.", { version: newest });
    notice.hidden = false;
  } else {
    notice.hidden = true;
  }
  $("#export-link").href = urls.exported(state.doc.id, state.version);
  $("#original-link").href = urls.file(state.doc.id, state.version);
}

async function switchVersion(version, page = state.page, { fromUser = false } = {}) {
  state.version = version;
  state.stale.clear();
  annotations.clear(); // they belong to the version they were made on
  renderVersions();
  renderThumbs();
  showPage(Math.min(page, pageCount()) || 1);
  if (fromUser) follow.userMoved(currentView());
  await annotations.load();
}

// ---- thumbnails -----------------------------------------------------------------------------

function renderThumbs() {
  const list = $("#thumbs");
  const count = pageCount();
  const items = [];
  for (let page = 1; page <= count; page += 1) {
    const [w, hgt] = pageSize(page);
    const button = h("button", { type: "button", class: "thumb", "data-page": page, "aria-label": _("Page %(page)s", { page }) });
    if (!isRendered(page)) state.stale.add(`thumb:${page}`);
    button.append(h("img", { src: imageUrl(page, "thumb"), alt: "", loading: "lazy", decoding: "async",
      width: THUMB_WIDTH, height: Math.round((THUMB_WIDTH * hgt) / w) }), h("span", { class: "thumb-number" }, String(page)));
    const item = h("li");
    item.append(button);
    items.push(item);
  }
  list.replaceChildren(...items);
  $("#page-count").textContent = String(count);
  $("#page-input").max = String(count);
}

function refreshRendered() {
  for (const key of [...state.stale]) {
    const [kind, pageText] = key.split(":");
    const page = Number(pageText);
    if (!isRendered(page)) continue;
    if (kind === "thumb") {
      const img = $(`.thumb[data-page="${page}"] img`);
      if (img) img.src = imageUrl(page, "thumb");
    } else if (page === state.page) {
      image.src = imageUrl(page, "view");
      $("#page-pending").hidden = true;
    }
    state.stale.delete(key);
  }
}

// ---- the page, zoom and the visible rectangle ------------------------------------------------

function fitSize() {
  const [w, hgt] = pageSize(state.page);
  const aspect = hgt / w;
  const availW = Math.max(100, stage.clientWidth - 24);
  const availH = Math.max(100, stage.clientHeight - 24);
  const width = Math.min(availW, availH / aspect);
  return { width, height: width * aspect, aspect };
}

function layout() {
  const fit = fitSize();
  const width = Math.round(fit.width * state.zoom);
  wrap.style.width = `${width}px`;
  wrap.style.height = `${Math.round(width * fit.aspect)}px`;
  $("#zoom-level").textContent = `${Math.round(state.zoom * 100)}%`;
  stage.classList.toggle("zoomed", state.zoom > 1);
}

/** The part of the page on screen, normalised; null when the whole page is shown. */
function visibleRect() {
  if (state.zoom <= 1) return null;
  const w = wrap.offsetWidth;
  const hgt = wrap.offsetHeight;
  const left = stage.scrollLeft - wrap.offsetLeft;
  const top = stage.scrollTop - wrap.offsetTop;
  const clamp = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
  return [clamp(left / w), clamp(top / hgt), clamp((left + stage.clientWidth) / w), clamp((top + stage.clientHeight) / hgt)];
}

function currentView() {
  return { document_id: state.doc.id, version: state.version, page: state.page, rect: visibleRect() };
}

function setZoom(zoom, center = null) {
  const before = visibleRect() || [0, 0, 1, 1];
  const cx = center ? center[0] : (before[0] + before[2]) / 2;
  const cy = center ? center[1] : (before[1] + before[3]) / 2;
  state.zoom = Math.min(ZOOMS[ZOOMS.length - 1] * 1.5, Math.max(1, zoom));
  layout();
  stage.scrollLeft = wrap.offsetLeft + cx * wrap.offsetWidth - stage.clientWidth / 2;
  stage.scrollTop = wrap.offsetTop + cy * wrap.offsetHeight - stage.clientHeight / 2;
}

function zoomToRect(rect) {
  if (!rect) {
    setZoom(1);
    return;
  }
  const fit = fitSize();
  const [x0, y0, x1, y1] = rect;
  const zoom = Math.min(stage.clientWidth / Math.max(0.01, (x1 - x0) * fit.width),
    stage.clientHeight / Math.max(0.01, (y1 - y0) * fit.height));
  setZoom(zoom, [(x0 + x1) / 2, (y0 + y1) / 2]);
}

function prefetch(page) {
  if (page < 1 || page > pageCount() || !isRendered(page)) return;
  const next = new Image();
  next.decoding = "async";
  next.src = imageUrl(page, "view"); // the immutable URL: the browser cache keeps it
}

function showPage(page, { fromUser = false } = {}) {
  const count = pageCount();
  page = Math.max(1, Math.min(count || 1, Math.round(Number(page)) || 1));
  const changed = page !== state.page;
  state.page = page;
  const [w, hgt] = pageSize(page);
  annotations.annotator.setPage(w, hgt);
  if (!isRendered(page)) state.stale.add(`view:${page}`);
  $("#page-pending").hidden = isRendered(page);
  const url = imageUrl(page, "view");
  if (image.getAttribute("src") !== url) {
    image.alt = _("Page %(page)s of %(count)s", { page, count });
    image.src = url;
  }
  if (changed && state.zoom !== 1 && fromUser) state.zoom = 1;
  layout();
  $("#page-input").value = String(page);
  $("#prev-page").disabled = page <= 1;
  $("#next-page").disabled = page >= count;
  for (const thumb of document.querySelectorAll(".thumb[aria-current]")) thumb.removeAttribute("aria-current");
  const thumb = $(`.thumb[data-page="${page}"]`);
  if (thumb) {
    thumb.setAttribute("aria-current", "page");
    thumb.scrollIntoView({ block: "nearest" });
  }
  const query = new URLSearchParams(location.search);
  query.set("page", page);
  query.set("version", state.version);
  query.delete("follow");
  history.replaceState(null, "", `${location.pathname}?${query}`);
  annotations.render();
  if (fromUser) follow.userMoved(currentView());
}

image.addEventListener("load", () => {
  prefetch(state.page + 1);
  $("#viewer").dataset.state = "ready";
});

// ---- presenter follow ------------------------------------------------------------------------

async function applyView(view) {
  if (!state.doc) return;
  if (view.document_id !== state.doc.id) {
    try {
      await api.get(urls.document(view.document_id)); // only documents this viewer may see
    } catch {
      return;
    }
    location.assign(`${urls.viewer(data.meeting_id, view.document_id, view)}&follow=1`);
    return;
  }
  if (view.version !== state.version && versionInfo(view.version) === null) await loadDocument();
  if (view.version !== state.version) await switchVersion(view.version, view.page);
  showPage(view.page);
  zoomToRect(view.rect);
}

function renderFollow({ following, presenting, presenter, notFollowing, active, error }) {
  sessionStorage.setItem(storeKey("following"), following ? "1" : "0");
  sessionStorage.setItem(storeKey("presenting"), presenting ? "1" : "0");
  const label = $("#follow-state");
  const button = $("#follow-btn");
  const name = presenter && presenter.label;
  if (presenting) {
    label.dataset.state = "presenting";
    label.textContent = _("You are presenting: followers see your page.");
  } else if (!active) {
    label.dataset.state = "none";
    label.textContent = "";
  } else if (following) {
    label.dataset.state = "following";
    label.textContent = name ? _("Following %(name)s", { name }) : _("Following the presenter");
  } else {
    label.dataset.state = "free";
    label.textContent = _("Browsing freely");
  }
  button.hidden = presenting || following || !active;
  const present = $("#present-btn");
  if (present) {
    present.setAttribute("aria-pressed", presenting ? "true" : "false");
    present.textContent = presenting ? _("Stop presenting") : _("Present to everyone");
  }
  const panel = $("#followers-panel");
  if (panel) {
    panel.hidden = !presenting;
    $("#not-following-count").textContent = String(notFollowing.length);
    $("#all-following").hidden = notFollowing.length > 0;
    $("#not-following").replaceChildren(...notFollowing.map((who) => {
      const item = h("li", { "data-point-code": who.point_code || "" }, who.label);
      if (who.point_code) item.append(" ", h("code", {}, who.point_code));
      return item;
    }));
  }
  showMessage(viewerError, error ? error.message : "");
}

const follow = new Follow({ meetingId: data.meeting_id, onView: applyView, onChange: renderFollow });
follow.following = sessionStorage.getItem(storeKey("following")) !== "0";

// ---- annotations -------------------------------------------------------------------------------

const annotations = new AnnotationPanel(document, {
  userId: data.me.user_id,
  where: () => ({ documentId: state.doc.id, version: state.version, page: state.page }),
});

// ---- controls ----------------------------------------------------------------------------------

const userGo = (page) => showPage(page, { fromUser: true });
$("#prev-page").addEventListener("click", () => userGo(state.page - 1));
$("#next-page").addEventListener("click", () => userGo(state.page + 1));
$("#page-input").addEventListener("change", (event) => userGo(event.target.value));
$("#thumbs").addEventListener("click", (event) => {
  const thumb = event.target.closest(".thumb");
  if (thumb) userGo(Number(thumb.dataset.page));
});
const userZoom = (zoom) => {
  setZoom(zoom);
  follow.userMoved(currentView());
};
$("#zoom-in").addEventListener("click", () => userZoom(ZOOMS.find((z) => z > state.zoom + 0.01) || state.zoom));
$("#zoom-out").addEventListener("click", () => userZoom([...ZOOMS].reverse().find((z) => z < state.zoom - 0.01) || 1));
$("#zoom-fit").addEventListener("click", () => userZoom(1));
$("#zoom-width").addEventListener("click", () => {
  const fit = fitSize();
  userZoom(Math.max(1, (stage.clientWidth - 24) / fit.width));
});
$("#follow-btn").addEventListener("click", () => follow.returnToPresenter());
const presentButton = $("#present-btn");
if (presentButton) {
  presentButton.addEventListener("click", () => follow.setPresenting(!follow.presenting, currentView()));
}
$("#version-select").addEventListener("change", (event) => switchVersion(Number(event.target.value), state.page, { fromUser: true }));
$("#version-switch").addEventListener("click", () => switchVersion(state.doc.current_version, state.page, { fromUser: true }));
stage.addEventListener("scroll", () => {
  if (follow.presenting && state.zoom > 1) follow.publish(currentView());
}, { passive: true });
window.addEventListener("resize", () => layout());
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, textarea, select") || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === "ArrowRight" || event.key === "PageDown") userGo(state.page + 1);
  else if (event.key === "ArrowLeft" || event.key === "PageUp") userGo(state.page - 1);
  else return;
  event.preventDefault();
});

setupSearch($(".viewer-side"), data.meeting_id, {
  async onHit(hit, event) {
    event.preventDefault();
    if (hit.document_id === state.doc.id) {
      if (hit.version !== state.version && versionInfo(hit.version)) await switchVersion(hit.version, hit.page, { fromUser: true });
      userGo(hit.page);
      return;
    }
    follow.userMoved(currentView());
    location.assign(urls.viewer(data.meeting_id, hit.document_id, hit));
  },
});

// ---- a new version (staff) ------------------------------------------------------------------

const replaceForm = $("#replace-form");
if (replaceForm) {
  let limits = null;
  api.get(urls.limits(data.meeting_id)).then((answer) => { limits = answer; }).catch(() => {});
  replaceForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("#replace-error");
    const file = replaceForm.elements.file.files[0];
    const refused = precheck(file, limits);
    if (refused) {
      showMessage(error, refused === "missing_file" ? _("Choose a PDF file to upload.") : errorMessage(refused, limits || {}));
      return;
    }
    showMessage(error, "");
    const body = new FormData();
    body.append("file", file, file.name);
    const progress = $("#replace-progress");
    progress.hidden = false;
    const button = replaceForm.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const doc = await uploadWithProgress(`${urls.document(state.doc.id)}/versions`, body, (loaded, total) => {
        $("#replace-bar").value = total ? loaded / total : 0;
        $("#replace-progress-text").textContent = _("Uploading… %(percent)s%%", { percent: Math.floor((100 * loaded) / (total || 1)) });
      });
      replaceForm.reset();
      const warnings = (doc.warnings || []).map(warningText).filter(Boolean);
      showMessage(error, "");
      state.doc = doc;
      await switchVersion(doc.current_version, state.page);
      if (follow.presenting) follow.publish(currentView());
      if (warnings.length) showMessage(viewerError, warnings.join(" "));
    } catch (err) {
      showMessage(error, err.message);
    } finally {
      progress.hidden = true;
      button.disabled = false;
    }
  });
}

// ---- live events -------------------------------------------------------------------------------

let reloadTimer = null;
async function reloadDocument() {
  try {
    await loadDocument();
    renderVersions();
    const info = versionInfo();
    if (info && info.page_count !== $("#thumbs").children.length) renderThumbs();
    refreshRendered();
  } catch (err) {
    showMessage(viewerError, err.message);
  }
}

onMeetingEvents((event) => {
  if (!state.doc) return;
  const mine = event.document_id === state.doc.id;
  switch (event.type) {
    case "document.progress":
      if (mine && event.version === state.version) {
        const info = versionInfo();
        if (info) info.rendered_pages = Math.max(info.rendered_pages || 0, event.done);
        refreshRendered();
      }
      break;
    case "document.ready":
    case "document.version":
      if (mine) {
        clearTimeout(reloadTimer);
        reloadTimer = setTimeout(reloadDocument, 200);
      }
      break;
    case "annotation.shared":
    case "annotation.changed":
    case "annotation.deleted":
      if (mine && (event.version === undefined || event.version === state.version)) annotations.loadSoon();
      break;
    case "joined":
      annotations.loadSoon();
      follow.onEvent(event);
      break;
    default:
      if (event.type && event.type.startsWith("presenter.")) follow.onEvent(event);
      break;
  }
});

const STATUS_TEXT = {
  connecting: () => _("Connecting…"),
  reconnecting: () => _("Connection lost. Reconnecting…"),
  live: () => _("Live"),
};
const socket = new MeetingSocket(data.meeting_id, {
  onStatus(status, error) {
    const el = $("#conn-status");
    el.dataset.state = status;
    el.textContent = status === "failed"
      ? _("Not following live: %(reason)s", { reason: errorMessage(error.code, error.details, error.message) })
      : STATUS_TEXT[status]();
  },
});

// ---- start -------------------------------------------------------------------------------------

async function start() {
  try {
    await loadDocument();
  } catch (err) {
    showMessage(viewerError, err.message);
    $("#viewer").dataset.state = "failed";
    return;
  }
  const query = new URLSearchParams(location.search);
  const asked = Number(data.version) || state.doc.current_version;
  state.version = versionInfo(asked) ? asked : state.doc.current_version;
  renderVersions();
  renderThumbs();
  state.page = 0;
  showPage(data.page || 1);
  await annotations.load();
  socket.start();
  await follow.load({ apply: false });
  if (sessionStorage.getItem(storeKey("presenting")) === "1" && data.can_present) {
    await follow.setPresenting(true, currentView());
  } else if (follow.active && follow.following) {
    // Opened by following: go where the presenter is. Opened by choice (another document, or
    // another page of this one): the user browses freely, and the presenter sees it.
    const view = follow.view;
    const chosen = !query.has("follow") && (view.document_id !== state.doc.id || (query.has("page") && view.page !== state.page));
    if (chosen) await follow.setFollowing(false);
    else await applyView(view);
  }
}

window.addEventListener("pagehide", () => socket.stop());
start();
