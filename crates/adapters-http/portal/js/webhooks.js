// A group's webhooks: the list with each one's last 24 hours, the form that
// creates or edits one, and one webhook's page with its actions.

import * as api from "./api.js";
import { actionButton, announce, confirmButton, errorBox, field, h, show } from "./dom.js";
import { deliveryChart } from "./chart.js";
import { deliveryLog } from "./deliveries.js";
import { headersEditor } from "./headers.js";

/** The events a webhook can receive, as the API names them. */
const EVENT_TYPES = ["user.created", "user.session.result"];

function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${Math.round(rate * 1000) / 10} %`;
}

/** The last 24 hours of a webhook: success rate and deliveries, or the API's error. */
async function lastDay(id) {
  try {
    const stats = await api.webhooks.stats(id);
    return [percent(stats.successRate), String(stats.deliveries.total)];
  } catch (error) {
    return [error.message, "—"];
  }
}

export async function webhookList() {
  const list = await api.webhooks.list();
  const rows = await Promise.all(list.map(async (webhook) => {
    const [rate, count] = await lastDay(webhook.id);
    return h("tr", {},
      h("td", { "data-label": "URL" }, h("a", { href: `#/w/${webhook.id}` }, webhook.url)),
      h("td", { "data-label": "Description" }, webhook.description),
      h("td", { "data-label": "Status" }, h("span", { class: `badge ${webhook.status}` }, webhook.status)),
      h("td", { "data-label": "Events" }, webhook.enabledEvents.join(", ")),
      h("td", { "data-label": "Rate limit" }, webhook.rateLimit ? `${webhook.rateLimit}/s` : "none"),
      h("td", { "data-label": "Success (24 h)" }, rate),
      h("td", { "data-label": "Deliveries (24 h)" }, count));
  }));
  show(
    h("h1", {}, "Webhooks"),
    h("p", {}, h("a", { class: "button", href: "#/new" }, "New webhook")),
    list.length === 0
      ? h("p", {}, "No webhook yet.")
      : h("table", { class: "list" },
          h("caption", {}, "Webhooks of this group, with their last 24 hours"),
          h("thead", {}, h("tr", {}, ["URL", "Description", "Status", "Events", "Rate limit",
            "Success (24 h)", "Deliveries (24 h)"].map((name) => h("th", { scope: "col" }, name)))),
          h("tbody", {}, rows)),
  );
}

/** The body of a create or an update, from the form's fields. */
function formBody(fields) {
  const body = {
    url: fields.url.value.trim(),
    description: fields.description.value,
    enabledEvents: fields.events.filter((box) => box.checked).map((box) => box.value),
  };
  const limit = fields.rateLimit.value.trim();
  // Digits go as a number; anything else as written, for the API to judge.
  if (fields.editing) body.rateLimit = limit === "" ? null : /^\d+$/.test(limit) ? Number(limit) : limit;
  // Unchecked, an edit says "none"; a creation just leaves it out.
  if (fields.fifo.checked) body.ordering = "fifo";
  else if (fields.editing) body.ordering = null;
  const headers = fields.headers.value();
  if (headers !== undefined) body.headers = headers;
  return body;
}

const FIFO_HINT =
  "One delivery at a time, in the order events were accepted: a failing event holds back the ones " +
  "behind it through its retries, and throughput is bounded to one delivery in flight " +
  "(one request per round trip), whatever the rate limit.";

/** Creates a webhook (`id` null) or edits one. */
export async function webhookForm(id) {
  const webhook = id ? await api.webhooks.get(id) : null;
  const fields = {
    editing: Boolean(webhook),
    url: h("input", { type: "url", name: "url", required: true, value: webhook ? webhook.url : "" }),
    description: h("input", { name: "description", value: webhook ? webhook.description : "" }),
    rateLimit: h("input", { name: "rateLimit", inputmode: "numeric", value: webhook?.rateLimit ?? "" }),
    fifo: h("input", {
      type: "checkbox", name: "ordering", value: "fifo", checked: webhook?.ordering === "fifo",
      "aria-describedby": "fifo-hint",
    }),
    headers: headersEditor(webhook?.headers),
    events: EVENT_TYPES.map((type) => h("input", {
      type: "checkbox", name: "events", value: type,
      checked: webhook ? webhook.enabledEvents.includes(type) : true,
    })),
  };
  const problem = h("div");
  const form = h("form", { class: "card" },
    field("Endpoint URL", fields.url, "Where deliveries are POSTed (https://…)."),
    field("Description", fields.description),
    h("fieldset", {}, h("legend", {}, "Events"),
      fields.events.map((box) => h("label", { class: "check" }, box, " ", box.value))),
    webhook ? field("Rate limit (deliveries per second)", fields.rateLimit, "Empty: no limit.") : null,
    h("div", { class: "field" },
      h("label", { class: "check" }, fields.fifo, " Deliver in order (FIFO)"),
      h("small", { id: "fifo-hint" }, FIFO_HINT)),
    fields.headers.element,
    h("button", { type: "submit" }, webhook ? "Save" : "Create"),
    " ", h("a", { href: webhook ? `#/w/${id}` : "#/" }, "Cancel"),
    problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    try {
      const saved = webhook
        ? await api.webhooks.update(id, formBody(fields))
        : await api.webhooks.create(formBody(fields));
      announce(webhook ? "Webhook saved." : "Webhook created.", { nextPage: true });
      window.location.hash = `#/w/${saved.id}`;
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  });
  show(h("h1", {}, webhook ? "Edit webhook" : "New webhook"), form);
}

/** The signing secret: hidden until asked for; revealing and rotating ask first. */
function secretSection(id) {
  const shown = h("code", { class: "secret", "aria-live": "polite" }, "••••••••");
  const reveal = confirmButton("Reveal secret",
    "Show the signing secret on this screen? Whoever sees it can sign requests your endpoint will trust.",
    async () => {
      shown.textContent = (await api.webhooks.secret(id)).secret;
    }, { danger: false });
  const rotate = confirmButton("Rotate secret",
    "A new secret signs from now on; the old one keeps signing for 24 hours. Rotate?",
    async () => {
      shown.textContent = (await api.webhooks.rotate(id)).secret;
      announce("Secret rotated. Both secrets sign for the next 24 hours.");
    });
  return h("section", { "aria-labelledby": "secret-h" },
    h("h2", { id: "secret-h" }, "Signing secret"), h("p", {}, shown), h("p", {}, reveal, " ", rotate));
}

function statusToggle(webhook) {
  const next = webhook.status === "enabled" ? "disabled" : "enabled";
  return actionButton(next === "enabled" ? "Enable" : "Disable", async () => {
    await api.webhooks.update(webhook.id, {
      url: webhook.url, description: webhook.description, status: next,
    });
    announce(`Webhook ${next}.`);
    await webhookPage(webhook.id);
  });
}

/** The custom headers' names, their values masked as the API shows them. */
function headerNames(headers) {
  const names = Object.keys(headers || {});
  return names.length ? names.map((name) => `${name}: ****`).join(", ") : "none";
}

export async function webhookPage(id) {
  const webhook = await api.webhooks.get(id);
  const chart = await deliveryChart(id);
  const sent = h("span", { "aria-live": "polite" });
  const test = actionButton("Send test event", async () => {
    const queued = await api.webhooks.test(id);
    sent.replaceChildren(" Queued ", h("a", { href: `#/w/${id}/d/${queued.deliveryId}` }, queued.deliveryId));
  });
  const remove = confirmButton("Delete", "Delete this webhook and its delivery log?", async () => {
    await api.webhooks.remove(id);
    announce("Webhook deleted.", { nextPage: true });
    window.location.hash = "#/";
  });
  show(
    h("p", {}, h("a", { href: "#/" }, "← Webhooks")),
    h("h1", {}, webhook.description || webhook.url),
    h("dl", { class: "facts" },
      h("dt", {}, "URL"), h("dd", {}, webhook.url),
      h("dt", {}, "Status"), h("dd", {}, h("span", { class: `badge ${webhook.status}` }, webhook.status)),
      h("dt", {}, "Events"), h("dd", {}, webhook.enabledEvents.join(", ")),
      h("dt", {}, "Rate limit"), h("dd", {}, webhook.rateLimit ? `${webhook.rateLimit}/s` : "none"),
      h("dt", {}, "Ordering"), h("dd", {}, webhook.ordering === "fifo" ? "FIFO (one delivery in flight)" : "none"),
      h("dt", {}, "Custom headers"), h("dd", {}, headerNames(webhook.headers)),
      h("dt", {}, "ID"), h("dd", {}, h("code", {}, webhook.id))),
    h("p", { class: "actions" },
      h("a", { class: "button", href: `#/w/${id}/edit` }, "Edit"), " ",
      statusToggle(webhook), " ", test, sent, " ", remove),
    secretSection(id),
    chart,
    deliveryLog(id, chart.redraw),
  );
}
