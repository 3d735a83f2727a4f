// The REST client: every call goes straight to a service with the operator's bearer token.
// The token lives in sessionStorage only (gone when the tab closes) and is never logged.
const TOKEN_KEY = "qunyun.token";
const WHO_KEY = "qunyun.who";
let config = null;
let onUnauthorized = () => {};

export function setConfig(value) {
  config = value;
}

export function getConfig() {
  return config;
}

export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  who: () => JSON.parse(sessionStorage.getItem(WHO_KEY) || "null"),
  start(token, who) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(WHO_KEY, JSON.stringify(who));
  },
  end() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(WHO_KEY);
  },
};

/** What the token may do in a group: "write", "read" or null. */
export function access(groupId) {
  const who = session.who();
  if (!who) return null;
  const inGroup = who.groups.includes("*") || who.groups.includes(groupId);
  if (!inGroup) return null;
  if (who.scopes.includes("write")) return "write";
  return who.scopes.includes("read") ? "read" : null;
}

export function canWrite(groupId) {
  return access(groupId) === "write";
}

/** Whether the token covers every group (shared blocklists need that). */
export function allGroups() {
  return Boolean(session.who()?.groups.includes("*"));
}

export class ApiError extends Error {
  constructor(status, detail, service) {
    super(typeof detail === "string" ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.service = service;
  }
}

function url(base, path, query) {
  const target = new URL(base.replace(/\/$/, "") + path);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(key, value);
  }
  return target;
}

async function send(service, base, path, { method = "GET", query, body, token } = {}) {
  const headers = { Authorization: `Bearer ${token ?? session.token() ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer;
  try {
    answer = await fetch(url(base, path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, null, service);
  }
  const text = await answer.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!answer.ok) throw new ApiError(answer.status, data?.detail ?? data, service);
  return data;
}

/** Call a service's REST API (metrics, moderation, campaigns, delivery). */
export async function api(service, path, options = {}) {
  try {
    return await send(service, config.services[service], path, options);
  } catch (error) {
    if (error.status === 401 && !options.token) onUnauthorized(error);
    throw error;
  }
}

/** Ask the console what a token may do (401 for an unknown token). */
export function whoami(token) {
  return send("console", location.origin, "/v1/me", { token });
}

/** Every page of a cursor-paginated list, up to `max` items. */
export async function all(service, path, key, { query = {}, max = 2000 } = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(service, path, { query: { ...query, limit: query.limit ?? 500, cursor } });
    items.push(...page[key]);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

export const groupPath = (groupId) => `/v1/groups/${encodeURIComponent(groupId)}`;
