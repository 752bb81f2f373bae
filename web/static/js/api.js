// fetch() wrapper for the REST API: JSON in and out, the CSRF header on every write, and errors
// turned into ApiError with a translated message (keyed by the API's stable error code).

import { errorMessage } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function loginUrl() {
  return "/login?next=" + encodeURIComponent(location.pathname + location.search);
}

export async function request(method, url, { json, form, signal } = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // FormData: the browser sets the multipart boundary
  }
  if (method !== "GET" && method !== "HEAD") {
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, credentials: "same-origin", signal });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", errorMessage("network"), {});
  }
  let data = null;
  if ((response.headers.get("Content-Type") || "").includes("application/json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;
  const error = (data && data.error) || {};
  let code = error.code;
  if (!code) code = response.status === 429 ? "rate_limited" : response.status >= 500 ? "internal" : "http_error";
  const details = { ...(error.details || {}) };
  if (code === "rate_limited") {
    const retry = Number(details.retry_after_s) || Number(response.headers.get("Retry-After")) || 60;
    details.seconds = Math.max(1, Math.ceil(retry));
  }
  if (response.status === 401 && !url.startsWith("/api/auth/login")) {
    location.assign(loginUrl());
  }
  throw new ApiError(response.status, code, errorMessage(code, details, error.message), details);
}

export const api = {
  get: (url, options) => request("GET", url, options),
  post: (url, json, options) => request("POST", url, { ...options, json: json === undefined ? {} : json }),
  upload: (url, form, options) => request("POST", url, { ...options, form }),
};
