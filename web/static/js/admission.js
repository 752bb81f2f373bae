// Joins refused by admission control — the `admission.refused` event of the meeting
// (docs/protocol.md: {type, meeting_id, label, point_code, reason, cap}). Shared by the
// monitoring page (a refused point's state) and the chair's console (the live list of refusals).

import { formatTime, _ } from "./i18n.js";
import { h } from "./ui.js";

export const ADMISSION_REFUSED = "admission.refused";
const MERGE_MS = 3000;

const REASON_TEXT = {
  meeting_full: () => _("the meeting is full"),
  node_full: () => _("the server is full"),
};

/** The reason of a refusal in words (`meeting_full`, `node_full`; an unknown code as is). */
export function refusalReason(reason) {
  return REASON_TEXT[reason] ? REASON_TEXT[reason]() : String(reason || "");
}

/**
 * A live table of refused joins, newest first (at most `limit` rows).
 * @param {HTMLElement} body the <tbody> the rows go in
 * @param {object} parts `empty` (shown while there is none), `wrap` (hidden while there is none),
 *   `count` (shows the number of rows), `names` (point code → name), `limit`
 */
export class RefusalList {
  constructor(body, { empty = null, wrap = null, count = null, names = new Map(), limit = 200 } = {}) {
    this.body = body;
    this.empty = empty;
    this.wrap = wrap;
    this.count = count;
    this.names = names;
    this.limit = limit;
    this.total = 0; // refusals received (rows merge repeated ones)
    this.last = null;
  }

  /** Add one `admission.refused` event, received at `at`. The same point refused again for
   * the same reason within `MERGE_MS` (a room page opens two sockets, a hall PC retries) only
   * updates its row: the time, and how many times (`data-times`, "×N"). */
  add(event, at = new Date()) {
    const code = event.point_code || "";
    const key = `${code}|${event.label || ""}|${event.reason || ""}`;
    const last = this.last;
    this.total += 1;
    if (last && last.key === key && at - last.at < MERGE_MS && last.row.isConnected) {
      last.at = at;
      last.times += 1;
      last.row.dataset.times = String(last.times);
      last.row.querySelector(".refusal-times").textContent = ` ×${last.times}`;
      last.row.querySelector(".refusal-time").textContent = formatTime(at.toISOString());
      return;
    }
    const row = h("tr", { class: "refusal-row", "data-point-code": code, "data-reason": event.reason || "", "data-times": "1" });
    const who = h("td", { class: "refusal-who" });
    who.append(h("span", { class: "point-name" }, this.names.get(code) || event.label || code || "–"));
    if (code) who.append(document.createTextNode(" "), h("code", {}, code));
    who.append(h("span", { class: "refusal-times" }));
    this.last = { key, at, row, times: 1 };
    const reason = refusalReason(event.reason);
    const because = event.cap ? _("%(reason)s (limit %(cap)s)", { reason, cap: event.cap }) : reason;
    row.append(who, h("td", { class: "refusal-reason" }, because),
      h("td", { class: "refusal-time nowrap" }, formatTime(at.toISOString())));
    this.body.prepend(row);
    while (this.body.children.length > this.limit) this.body.lastElementChild.remove();
    if (this.count) this.count.textContent = String(this.body.children.length);
    if (this.empty) this.empty.hidden = true;
    if (this.wrap) this.wrap.hidden = false;
  }
}
