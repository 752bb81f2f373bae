// Presenter follow: the presenter's document, page and zoom rectangle drive
// the followers' viewers (presenter.view). A follower who turns pages themselves stops following
// (the server is told, so the presenter sees who is not following) and comes back with one
// action. The presenter publishes each of their own moves and watches the not-following list.

import { api } from "./api.js";

const PUBLISH_DELAY_MS = 250; // a burst of scrolls or zooms sends one view

export class Follow {
  /**
   * @param {object} options meetingId; onView(view) applies the presenter's view;
   *   onChange(state) redraws the controls: {following, presenting, presenter, notFollowing}.
   */
  constructor({ meetingId, onView, onChange }) {
    this.meetingId = meetingId;
    this.onView = onView;
    this.onChange = onChange;
    this.following = true;
    this.presenting = false;
    this.view = null; // the last presenter view: {document_id, version, page, rect}
    this.presenter = null;
    this.notFollowing = [];
    this.timer = null;
    this.pending = null;
  }

  get url() {
    return `/api/meetings/${this.meetingId}/presenter`;
  }

  /** Is someone presenting a document now? */
  get active() {
    return Boolean(this.view && this.view.document_id);
  }

  changed() {
    this.onChange({ following: this.following, presenting: this.presenting, presenter: this.presenter,
      notFollowing: this.notFollowing, active: this.active });
  }

  async load({ apply = true } = {}) {
    try {
      const data = await api.get(this.url);
      this.presenter = data.presenter || null;
      this.notFollowing = data.not_following || [];
      this.view = data.document_id ? { document_id: data.document_id, version: data.version, page: data.page, rect: data.rect || null } : null;
    } catch {
      this.view = null; // no presenter view (or the feature is unavailable): browse freely
    }
    this.changed();
    if (apply && this.following && !this.presenting && this.active) this.onView(this.view);
  }

  onEvent(event) {
    if (event.type === "presenter.view") {
      this.view = { document_id: event.document_id, version: event.version, page: event.page, rect: event.rect || null };
      if (!this.presenter) this.load({ apply: false }); // learn the presenter's name once
      this.changed();
      if (this.following && !this.presenting && this.active) this.onView(this.view);
    } else if (event.type === "presenter.followers" && this.presenting) {
      this.load({ apply: false });
    } else if (event.type === "joined") {
      this.load({ apply: this.following && !this.presenting });
    }
  }

  /** The user turned a page or zoomed by themselves. */
  userMoved(view) {
    if (this.presenting) {
      this.publish(view);
      return;
    }
    if (this.following && this.active) this.setFollowing(false);
  }

  async setFollowing(following) {
    this.following = following;
    this.changed();
    try {
      await api.post(`/api/meetings/${this.meetingId}/following`, { following });
    } catch {
      // the view still follows locally; the presenter's list is only a little out of date
    }
  }

  /** "Follow the presenter": one action back to where the presenter is. */
  async returnToPresenter() {
    await this.setFollowing(true);
    await this.load({ apply: true });
  }

  async setPresenting(presenting, view) {
    this.presenting = presenting;
    if (presenting) {
      this.following = false;
      this.publish(view, { now: true });
      await this.load({ apply: false });
    } else {
      this.following = true;
    }
    this.changed();
  }

  publish(view, { now = false } = {}) {
    this.pending = view;
    clearTimeout(this.timer);
    const send = async () => {
      const body = this.pending;
      this.pending = null;
      if (!body) return;
      try {
        await api.post(this.url, body);
        this.view = { ...body };
      } catch (err) {
        this.onChange({ following: this.following, presenting: this.presenting, presenter: this.presenter,
          notFollowing: this.notFollowing, active: this.active, error: err });
      }
    };
    if (now) send();
    else this.timer = setTimeout(send, PUBLISH_DELAY_MS);
  }
}
