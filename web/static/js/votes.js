// Votes for the console and the room: the vote list, ballots cast exactly once
// (one client_ballot_id per vote, kept in localStorage and re-sent after a reconnect), and the
// result table. Events carry counts only; choices and results come from REST.

import { locale, _ } from "./i18n.js";
import { $, busy, h, showMessage } from "./ui.js";

const CHOICE_LABELS = {
  agree: () => _("Agree"),
  disagree: () => _("Disagree"),
  abstain: () => _("Abstain"),
};

const STATE_LABELS = {
  open: () => _("Voting"),
  closed: () => _("Closed, result not published"),
  published: () => _("Result published"),
};

export function choiceLabel(choice) {
  const key = typeof choice === "string" ? choice : choice.key;
  if (CHOICE_LABELS[key]) return CHOICE_LABELS[key]();
  return (typeof choice === "object" && choice.label) || key;
}

export function stateLabel(state) {
  return STATE_LABELS[state] ? STATE_LABELS[state]() : state;
}

const percentFormat = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });

export function countText(vote) {
  return `${vote.ballots_cast} / ${vote.eligible}`;
}

/** The head of a vote's list item: title, state, kind, live count with a bar. */
export function voteItem(vote) {
  const item = h("li", { class: "vote-item", "data-vote-id": vote.id, "data-state": vote.state });
  const head = h("div", { class: "vote-head" });
  head.append(h("span", { class: "vote-title" }, vote.title));
  head.append(h("span", { class: `badge vote-state vote-${vote.state}` }, stateLabel(vote.state)));
  item.append(head);
  const kind = [vote.secret ? _("Secret ballot") : _("Named ballot"),
    vote.electorate === "delegates" ? _("each delegate votes") : _("one vote per bridge point")].join(" · ");
  item.append(h("p", { class: "vote-kind muted" }, kind));
  const count = h("p", { class: "vote-progress" });
  count.append(h("span", { class: "vote-count-label" }, _("Ballots cast") + ": "));
  count.append(h("strong", { class: "vote-count" }, countText(vote)));
  const bar = h("span", { class: "bar", "aria-hidden": "true" });
  const fill = h("span", { class: "bar-fill" });
  fill.style.width = `${vote.eligible ? Math.min(100, (100 * vote.ballots_cast) / vote.eligible) : 0}%`;
  bar.append(fill);
  count.append(bar);
  item.append(count);
  return item;
}

/** Update a rendered vote's count from a vote.count event. */
export function updateCount(root, event) {
  const item = root.querySelector(`.vote-item[data-vote-id="${CSS.escape(String(event.vote_id))}"]`);
  if (!item) return false;
  item.querySelector(".vote-count").textContent = `${event.ballots_cast} / ${event.eligible}`;
  const fill = item.querySelector(".bar-fill");
  if (fill) fill.style.width = `${event.eligible ? Math.min(100, (100 * event.ballots_cast) / event.eligible) : 0}%`;
  return true;
}

/** The result as a table: choice, count, percentage; named votes list who chose what. */
export function resultTable(vote, result) {
  const box = h("div", { class: "vote-result", "data-vote-id": vote.id });
  const table = h("table", { class: "table compact result-table" });
  const head = h("thead");
  const headRow = h("tr");
  headRow.append(h("th", { scope: "col" }, _("Choice")), h("th", { scope: "col" }, _("Ballots")),
    h("th", { scope: "col" }, _("Percent")));
  head.append(headRow);
  const body = h("tbody");
  const keys = (vote.choices || []).map((c) => c.key);
  for (const key of Object.keys(result.counts || {})) if (!keys.includes(key)) keys.push(key);
  for (const key of keys) {
    const choice = (vote.choices || []).find((c) => c.key === key) || key;
    const row = h("tr", { "data-choice": key });
    const pct = (result.percentages || {})[key];
    row.append(h("td", {}, choiceLabel(choice)), h("td", { class: "num" }, String((result.counts || {})[key] || 0)),
      h("td", { class: "num" }, pct === undefined || pct === null ? "—" : `${percentFormat.format(pct)}%`));
    body.append(row);
  }
  table.append(head, body);
  box.append(h("p", { class: "result-summary" },
    _("%(cast)s of %(eligible)s voters cast a ballot.", { cast: result.cast, eligible: result.eligible })));
  box.append(table);
  if (Array.isArray(result.named) && result.named.length) {
    const details = h("details", { class: "named-ballots" });
    details.append(h("summary", {}, _("Who voted what")));
    const list = h("ul");
    for (const ballot of result.named) {
      list.append(h("li", {}, `${ballot.voter_label}: ${choiceLabel((vote.choices || []).find((c) => c.key === ballot.choice) || ballot.choice)}`));
    }
    details.append(list);
    box.append(details);
  }
  return box;
}

// ---- ballots: one id per vote, kept until the server accepted it --------------------------

function storageKey(voteId, who) {
  return `diemcau.ballot.${who}.${voteId}`;
}

function read(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // private mode: the ballot still goes out once; a retry after reload gets already_voted
  }
}

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The stored ballot of `voteId` for `who`: {client_ballot_id, choice, accepted}. */
export function storedBallot(voteId, who) {
  return read(storageKey(voteId, who));
}

/**
 * Cast (or re-send) a ballot. The client_ballot_id is generated once per vote and reused for
 * every retry, so a ballot sent twice (a lost answer, a reconnect) counts once.
 */
export async function castBallot(client, voteId, who, choice) {
  const key = storageKey(voteId, who);
  let ballot = read(key);
  if (!ballot || ballot.choice !== choice && !ballot.sent) ballot = { client_ballot_id: newId(), choice };
  ballot.sent = true;
  write(key, ballot);
  const answer = await client.post(`/api/votes/${encodeURIComponent(voteId)}/ballots`,
    { choice: ballot.choice, client_ballot_id: ballot.client_ballot_id });
  write(key, { ...ballot, accepted: true });
  return answer;
}

/** Ballots sent but not confirmed (the answer was lost): re-send them with the same id. */
export async function resendPending(client, votes, who) {
  for (const vote of votes) {
    const ballot = storedBallot(vote.id, who);
    if (vote.state === "open" && !vote.you_voted && ballot && ballot.sent && !ballot.accepted) {
      try {
        await castBallot(client, vote.id, who, ballot.choice);
        vote.you_voted = true;
      } catch {
        // shown again on the next refresh
      }
    }
  }
}

/** The console's "open a vote" form: POST /api/meetings/{id}/votes, then `onOpened()`. */
export function bindVoteForm(voteForm, client, base, onOpened) {
  const custom = () => voteForm.elements.choice_mode.value === "custom";
  voteForm.addEventListener("change", () => { $("#vote-custom-field").hidden = !custom(); });
  voteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const formError = $("#vote-form-error");
    showMessage(formError, "");
    const title = voteForm.elements.title.value.trim();
    if (!title) {
      showMessage(formError, _("Enter the question to vote on."));
      return;
    }
    const body = {
      title, secret: voteForm.elements.secret.value === "true", electorate: voteForm.elements.electorate.value,
    };
    if (custom()) {
      const choices = voteForm.elements.custom.value.split("\n").map((c) => c.trim()).filter(Boolean);
      if (choices.length < 2) {
        showMessage(formError, _("Enter at least two choices, one per line."));
        return;
      }
      body.choices = choices;
    }
    const agenda = voteForm.elements.agenda_item_id.value;
    if (agenda) body.agenda_item_id = Number(agenda);
    busy(voteForm, async () => {
      try {
        await client.post(`${base}/votes`, body);
        voteForm.reset();
        $("#vote-custom-field").hidden = true;
        $("#vote-new").open = false;
        await onOpened();
      } catch (err) {
        showMessage(formError, err.message);
      }
    });
  });
}
