// Translations for the static ES modules. The page inlines the locale's catalog as JSON
// (<script type="application/json" id="i18n-data">, built by server/i18n.py); msgids are the
// English text, extracted from this directory by `python -m server.i18n extract`.

const node = document.getElementById("i18n-data");
const data = node ? JSON.parse(node.textContent) : {};
const messages = data.messages || {};

export const locale = data.locale || document.documentElement.lang || "vi";
export const timeZone = data.timezone || "Asia/Ho_Chi_Minh";

/** Fill `%(name)s` placeholders from `params`; `%%` is a literal percent sign. */
export function interpolate(text, params) {
  return text.replace(/%(?:\((\w+)\)s|%)/g, (whole, name) => {
    if (!name) return "%";
    const value = params ? params[name] : undefined;
    if (value === undefined || value === null) return whole;
    return Array.isArray(value) ? value.join(", ") : String(value);
  });
}

/** The translation of `msgid` (English) in the page's locale. */
export function _(msgid, params) {
  return interpolate(messages[msgid] || msgid, params);
}

/** The translated message of an API/WebSocket error code; `fallback` when the code is unknown. */
export function errorMessage(code, details, fallback) {
  const errors = data.errors || {};
  const text = errors[code] || fallback || errors.error || code;
  return interpolate(text, details || {});
}

export function levelLabel(level) {
  return (data.levels || {})[level] || level;
}

export function stateLabel(state) {
  return (data.states || {})[state] || state;
}

export function roleLabel(role) {
  return (data.roles || {})[role] || role;
}

const timeFormat = new Intl.DateTimeFormat(locale, { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const dateTimeFormat = new Intl.DateTimeFormat(locale, {
  timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23", day: "2-digit", month: "2-digit", year: "numeric",
});
const dayFormat = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });

/** A time as people in the meeting read it (Vietnam time): "08:05", or with the date when not today. */
export function formatTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const today = dayFormat.format(new Date()) === dayFormat.format(when);
  return (today ? timeFormat : dateTimeFormat).format(when);
}
