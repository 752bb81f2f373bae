// Small DOM helpers shared by the page modules. User data only ever goes in as text.

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function showMessage(element, text) {
  if (!element) return;
  element.textContent = text;
  element.hidden = !text;
}

export function hide(element) {
  if (element) element.hidden = true;
}

/** A new element with text content and attributes (never HTML). */
export function h(tag, attrs = {}, text = "") {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) element.setAttribute(name, value === true ? "" : value);
  }
  if (text) element.textContent = text;
  return element;
}

/** Disable a form's controls while `work` runs. */
export async function busy(form, work) {
  const controls = [...form.querySelectorAll("button, input, select, textarea")].filter((c) => !c.disabled);
  controls.forEach((c) => { c.disabled = true; });
  form.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    controls.forEach((c) => { c.disabled = false; });
    form.removeAttribute("aria-busy");
  }
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
