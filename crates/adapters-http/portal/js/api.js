// The public API, called with the session cookie. Every answer that is not a
// success becomes an Error whose message is the API's own words.

let session = null;

/** The session the portal works in: `{ groupID, csrfToken, expiresAt }`. */
export function current() {
  return session;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(method, path, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && session) headers["x-csrf-token"] = session.csrfToken;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let answer = null;
  try {
    answer = text ? JSON.parse(text) : null;
  } catch {
    answer = null;
  }
  if (!response.ok) {
    const message = answer && answer.error ? answer.error : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return answer;
}

/** Opens a session with a link's token or `{ apiKey, groupID }`. */
export async function signIn(credentials) {
  session = await request("POST", "/portal/api/session", credentials);
  return session;
}

/** The session of the cookie, if there is one. */
export async function resume() {
  try {
    session = await request("GET", "/portal/api/session");
  } catch (error) {
    if (error.status !== 401) throw error;
    session = null;
  }
  return session;
}

export async function signOut() {
  await request("DELETE", "/portal/api/session");
  session = null;
}

/** `/webhooks/{groupID}` and `rest`. */
function group(rest = "") {
  return `/webhooks/${session.groupID}${rest}`;
}

const webhook = (id, rest = "") => group(`/${encodeURIComponent(id)}${rest}`);

export const webhooks = {
  list: () => request("GET", group()),
  get: (id) => request("GET", webhook(id)),
  create: (body) => request("POST", group(), body),
  update: (id, body) => request("PUT", webhook(id), body),
  remove: (id) => request("DELETE", webhook(id)),
  secret: (id) => request("GET", webhook(id, "/secret")),
  rotate: (id) => request("POST", webhook(id, "/secret/rotate")),
  test: (id) => request("POST", webhook(id, "/test")),
  stats: (id, since, until) => {
    const query = new URLSearchParams();
    if (since) query.set("since", since);
    if (until) query.set("until", until);
    const suffix = query.toString() ? `?${query}` : "";
    return request("GET", webhook(id, `/stats${suffix}`));
  },
};

export const deliveries = {
  list: (id, { status, cursor, limit } = {}) => {
    const query = new URLSearchParams();
    if (status) query.set("status", status);
    if (cursor) query.set("cursor", cursor);
    if (limit) query.set("limit", String(limit));
    const suffix = query.toString() ? `?${query}` : "";
    return request("GET", webhook(id, `/deliveries${suffix}`));
  },
  get: (id, delivery) => request("GET", webhook(id, `/deliveries/${encodeURIComponent(delivery)}`)),
  retry: (id, delivery) =>
    request("POST", webhook(id, `/deliveries/${encodeURIComponent(delivery)}/retry`)),
  recover: (id, since) => request("POST", webhook(id, "/recover"), { since }),
};
