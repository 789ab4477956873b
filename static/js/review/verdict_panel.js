/*
 * The verdict panel's words: the Verdicts count and the history's count say the same thing.
 * Admins see every reviewer's verdicts in the history. Reviewers see only their own: another
 * reviewer's verdict stays hidden until theirs is given (independent verdicts), so their
 * count says how many verdicts came from others, without saying whose or which.
 */

import { app } from "./dom.js";

/** Whether the page is an admin's (templates/reviewer/review.html's data-staff). */
export const isStaff = !!app && app.getAttribute("data-staff") === "true";

export const HIDDEN_NOTE = "Other reviewers' verdicts stay hidden so that yours is independent.";

function hasOwnVerdict(item) {
  // A reviewer's history holds their own entries only.
  return (item.history || []).some((entry) => !entry.retracted && entry.verdict !== "skip");
}

/** The Verdicts line: how many verdicts the item has, and how many it needs. */
export function verdictsText(item) {
  const required = Number(item.required_verdicts) || 1;
  const count = Number(item.verdict_count) || 0;
  if (isStaff) {
    const text = required > 1 ? count + " of " + required + " needed" : (count ? count + " so far" : "none yet");
    return item.state === "decided" ? "decided · " + text : text;
  }
  const own = hasOwnVerdict(item);
  const others = Math.max(0, count - (own ? 1 : 0));
  const byOthers = others + " by " + (others === 1 ? "another reviewer" : "others");
  let text;
  if (item.state === "decided") {
    text = "decided · " + byOthers;
  } else if (required > 1) {
    text = count + " of " + required + " needed" + (others ? ", " + byOthers : "");
  } else {
    text = others ? byOthers : "none yet";
  }
  return own ? text + " · yours given" : text;
}

/** The history's count: everyone's for admins, "yours" for reviewers. */
export function historyCountText(entries) {
  return isStaff ? "(" + entries + ")" : "(yours: " + entries + ")";
}

/** What kind of verdict a history entry was, when it was not a plain one. */
export function historyNote(entry) {
  if (entry.is_adjudication) return " · adjudication";
  if (entry.is_second_look) return " · second look";
  return "";
}
