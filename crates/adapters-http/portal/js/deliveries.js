// A webhook's delivery log (status filter, pages, refresh, recovery) and one
// delivery with every attempt.

import * as api from "./api.js";
import { actionButton, announce, errorBox, field, h, show, when } from "./dom.js";

const STATUSES = ["", "pending", "succeeded", "failed"];
const PAGE = 20;

function deliveryRow(id, delivery) {
  return h("tr", {},
    h("td", { "data-label": "Delivery" }, h("a", { href: `#/w/${id}/d/${delivery.id}` }, delivery.id)),
    h("td", { "data-label": "Event" }, delivery.eventType),
    h("td", { "data-label": "Status" }, h("span", { class: `badge ${delivery.status}` }, delivery.status)),
    h("td", { "data-label": "Attempts" }, String(delivery.attemptCount)),
    h("td", { "data-label": "Created" }, when(delivery.createdAt)),
    h("td", { "data-label": "Next attempt" }, when(delivery.nextAttemptAt)));
}

/**
 * The log of webhook `id`: filled now, and again on each filter, page or
 * refresh; a refresh also calls `onRefresh` (the chart's redraw).
 */
export function deliveryLog(id, onRefresh = async () => {}) {
  const state = { cursors: [null] };
  const status = h("select", { name: "status" },
    STATUSES.map((value) => h("option", { value }, value || "any")));
  const body = h("div", { "aria-live": "polite" });
  const load = async () => {
    try {
      const cursor = state.cursors[state.cursors.length - 1];
      const page = await api.deliveries.list(id, { status: status.value, cursor, limit: PAGE });
      body.replaceChildren(pageTable(id, page, state, load));
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  };
  status.addEventListener("change", () => {
    state.cursors = [null];
    load();
  });
  const refresh = actionButton("Refresh", async () => {
    await Promise.all([load(), onRefresh()]);
    announce("Delivery log refreshed.");
  });
  load();
  return h("section", { "aria-labelledby": "log-h" },
    h("h2", { id: "log-h" }, "Deliveries"),
    h("div", { class: "toolbar" }, field("Status", status), refresh),
    body,
    recoverForm(id, load));
}

function pageTable(id, page, state, load) {
  const newer = h("button", { type: "button", disabled: state.cursors.length === 1 }, "Newer");
  newer.addEventListener("click", () => {
    state.cursors.pop();
    load();
  });
  const older = h("button", { type: "button", disabled: !page.nextCursor }, "Older");
  older.addEventListener("click", () => {
    state.cursors.push(page.nextCursor);
    load();
  });
  const table = page.data.length === 0
    ? h("p", {}, "No delivery.")
    : h("table", { class: "list" },
        h("caption", {}, "Deliveries, newest first"),
        h("thead", {}, h("tr", {}, ["Delivery", "Event", "Status", "Attempts", "Created", "Next attempt"]
          .map((name) => h("th", { scope: "col" }, name)))),
        h("tbody", {}, page.data.map((delivery) => deliveryRow(id, delivery))));
  return h("div", {}, table, h("p", { class: "pager" }, newer, " ", older));
}

/** Retries every failed delivery since a time. */
function recoverForm(id, reload) {
  const since = h("input", { type: "datetime-local", name: "since", required: true });
  const outcome = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "inline" },
    field("Retry failed deliveries since", since, "In your local time."),
    h("button", { type: "submit" }, "Recover"),
    outcome);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    outcome.replaceChildren();
    try {
      const at = since.value ? new Date(since.value).toISOString() : "";
      const answer = await api.deliveries.recover(id, at);
      outcome.replaceChildren(h("p", {}, `${answer.requeued} failed deliveries are due again.`));
      await reload();
    } catch (error) {
      outcome.replaceChildren(errorBox(error));
    }
  });
  return h("section", { "aria-labelledby": "recover-h" }, h("h3", { id: "recover-h" }, "Recover"), form);
}

function attemptRow(attempt) {
  return h("tr", {},
    h("td", { "data-label": "#" }, String(attempt.number)),
    h("td", { "data-label": "Time" }, when(attempt.attemptedAt)),
    h("td", { "data-label": "HTTP status" }, attempt.responseStatus ?? "—"),
    h("td", { "data-label": "Duration" }, `${attempt.durationMs} ms`),
    h("td", { "data-label": "Response" }, attempt.responseBody ? h("pre", {}, attempt.responseBody) : "—"),
    h("td", { "data-label": "Error" }, attempt.error ?? "—"));
}

export async function deliveryPage(id, deliveryId) {
  const delivery = await api.deliveries.get(id, deliveryId);
  const retry = actionButton("Retry", async () => {
    await api.deliveries.retry(id, deliveryId);
    announce("Delivery queued again.");
    await deliveryPage(id, deliveryId);
  });
  const refresh = actionButton("Refresh", () => deliveryPage(id, deliveryId));
  show(
    h("p", {}, h("a", { href: `#/w/${id}` }, "← Webhook")),
    h("h1", {}, `Delivery ${delivery.id}`),
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", {}, h("span", { class: `badge ${delivery.status}` }, delivery.status)),
      h("dt", {}, "Event"), h("dd", {}, `${delivery.eventType} (${delivery.eventId})`),
      h("dt", {}, "Created"), h("dd", {}, when(delivery.createdAt)),
      h("dt", {}, "Next attempt"), h("dd", {}, when(delivery.nextAttemptAt))),
    h("p", { class: "actions" }, retry, " ", refresh),
    h("h2", {}, "Attempts"),
    delivery.attempts.length === 0
      ? h("p", {}, "No attempt yet.")
      : h("table", { class: "list attempts" },
          h("caption", {}, "Every attempt, first to last"),
          h("thead", {}, h("tr", {}, ["#", "Time", "HTTP status", "Duration", "Response", "Error"]
            .map((name) => h("th", { scope: "col" }, name)))),
          h("tbody", {}, delivery.attempts.map(attemptRow))),
    h("h2", {}, "Payload"),
    h("pre", { class: "payload" }, JSON.stringify(delivery.payload, null, 2)),
  );
}
