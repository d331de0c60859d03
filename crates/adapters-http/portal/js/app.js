// The portal's entry: finds the session (or opens one with a link), then
// shows the page the location's fragment names.

import * as api from "./api.js";
import { announce, clearStaleAnnouncement, errorBox, field, h, show } from "./dom.js";
import { webhookList, webhookForm, webhookPage } from "./webhooks.js";
import { deliveryPage } from "./deliveries.js";

/** `#/path?query` → `{ parts, query }`. */
function location() {
  const [path, query] = window.location.hash.replace(/^#/, "").split("?");
  return { parts: (path || "/").split("/").filter(Boolean), query: new URLSearchParams(query || "") };
}

async function route() {
  clearStaleAnnouncement();
  const { parts, query } = location();
  if (parts[0] === "open") return openLink(query.get("token") || "");
  if (!api.current()) return signInPage(null, query.get("group"));
  if (parts[0] === "signin") window.history.replaceState(null, "", "#/");
  header();
  try {
    if (parts.length === 0 || parts[0] === "signin") return await webhookList();
    if (parts[0] === "new") return webhookForm(null);
    if (parts[0] === "w" && parts[2] === "edit") return await webhookForm(parts[1]);
    if (parts[0] === "w" && parts[2] === "d" && parts[3]) return await deliveryPage(parts[1], parts[3]);
    if (parts[0] === "w" && parts[1]) return await webhookPage(parts[1]);
    show(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the webhooks")));
  } catch (error) {
    if (error.status === 401) return signInPage("Your session has ended. Sign in again.");
    show(h("h1", {}, "Something went wrong"), errorBox(error), h("p", {}, h("a", { href: "#/" }, "Back to the webhooks")));
  }
}

/** A link's token: exchanged at once for a session, then dropped from the address. */
async function openLink(token) {
  try {
    await api.signIn({ token });
    window.history.replaceState(null, "", "#/");
    announce("Signed in.", { nextPage: true });
    route();
  } catch (error) {
    header();
    const expired = error.status === 401;
    show(
      h("h1", {}, expired ? "This link cannot be used" : "Something went wrong"),
      expired
        ? h("p", { class: "error", role: "alert" },
            "This link has expired or was already used. Each link opens the portal once; ask for a new one.")
        : errorBox(error),
      h("p", {}, h("a", { href: "#/signin" }, "Sign in with an API key instead")),
    );
  }
}

/** The sign-in form; `groupID` prefills its group (the start-up message's address carries the demo's). */
function signInPage(notice, groupID) {
  header();
  if (window.location.hash !== "#/signin") window.history.replaceState(null, "", "#/signin");
  const group = h("input", {
    name: "groupID", inputmode: "numeric", autocomplete: "off", required: true, value: groupID || "",
  });
  const key = h("input", { name: "apiKey", type: "password", autocomplete: "off", required: true });
  const problem = h("div");
  const form = h("form", { class: "card" },
    field("Group ID", group,
      "The numeric groupID your webhooks belong to. The demo tenant's group is 123456: " +
      "the first start prints it next to the demo API key."),
    field("API key", key, "Exchanged at once for a session; the key is not kept in the browser."),
    h("button", { type: "submit" }, "Sign in"),
    problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    try {
      await api.signIn({ groupID: group.value.trim(), apiKey: key.value.trim() });
      key.value = "";
      window.location.hash = "#/";
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  });
  show(h("h1", {}, "Sign in"), notice ? h("p", { role: "alert" }, notice) : null, form);
}

function header() {
  const session = api.current();
  document.getElementById("group").textContent = session ? `Group ${session.groupID}` : "";
  document.getElementById("sign-out").hidden = !session;
}

async function signOut() {
  try {
    await api.signOut();
  } catch (error) {
    announce(error.message);
  }
  announce("Signed out.");
  signInPage();
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  if (location().parts[0] !== "open") await api.resume();
  route();
}

start();
