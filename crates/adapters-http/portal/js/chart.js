// Deliveries over the last 24 hours in 2-hour bars (succeeded, failed,
// pending), drawn as SVG from the webhook's stats endpoint.

import * as api from "./api.js";
import { errorBox, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const BUCKETS = 12;
const HOURS = 2;
const SERIES = [
  ["succeeded", "Succeeded"],
  ["failed", "Failed"],
  ["pending", "Pending"],
];

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child instanceof Node ? child : document.createTextNode(child));
  return element;
}

/** The bucket windows, oldest first, ending at the next whole hour. */
function windows() {
  const end = new Date();
  end.setMinutes(0, 0, 0);
  end.setHours(end.getHours() + 1);
  return Array.from({ length: BUCKETS }, (_, index) => {
    const until = new Date(end.getTime() - (BUCKETS - 1 - index) * HOURS * 3600e3);
    return { since: new Date(until.getTime() - HOURS * 3600e3), until };
  });
}

function draw(buckets) {
  const width = 600, height = 200, left = 36, bottom = 24, top = 8;
  const most = Math.max(1, ...buckets.map((b) => b.counts.total));
  const slot = (width - left) / buckets.length;
  const scale = (height - bottom - top) / most;
  const bars = buckets.flatMap((bucket, index) => {
    let y = height - bottom;
    const x = left + index * slot + slot * 0.15;
    const label = `${bucket.since.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: ` +
      SERIES.map(([key, name]) => `${bucket.counts[key]} ${name.toLowerCase()}`).join(", ");
    const parts = SERIES.map(([key]) => {
      const size = bucket.counts[key] * scale;
      y -= size;
      return svg("rect", { x, y, width: slot * 0.7, height: size, class: `bar ${key}` });
    });
    return [svg("g", {}, svg("title", {}, label), ...parts),
      index % 2 === 0
        ? svg("text", { x: x + slot * 0.35, y: height - 6, class: "tick", "text-anchor": "middle" },
            bucket.since.toLocaleTimeString([], { hour: "2-digit" }))
        : null].filter(Boolean);
  });
  const axis = [0, most].map((value) =>
    svg("text", { x: left - 6, y: height - bottom - value * scale + 4, class: "tick", "text-anchor": "end" },
      String(value)));
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "chart-h chart-d" },
    svg("desc", { id: "chart-d" }, buckets.map((b) =>
      `${b.since.toISOString()}: ${b.counts.succeeded} succeeded, ${b.counts.failed} failed, ${b.counts.pending} pending`).join("; ")),
    svg("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: "axis" }),
    ...axis, ...bars);
}

function legend() {
  return h("ul", { class: "legend" },
    SERIES.map(([key, name]) => h("li", {}, h("span", { class: `swatch ${key}`, "aria-hidden": "true" }), name)));
}

/** The chart section of webhook `id`; its `redraw()` reads the stats again. */
export async function deliveryChart(id) {
  const body = h("div");
  const section = h("section", { "aria-labelledby": "chart-h", class: "chart" },
    h("h2", { id: "chart-h" }, "Deliveries, last 24 hours"), body);
  section.redraw = async () => {
    try {
      const buckets = await Promise.all(windows().map(async ({ since, until }) => {
        const stats = await api.webhooks.stats(id, since.toISOString(), until.toISOString());
        return { since, counts: stats.deliveries };
      }));
      body.replaceChildren(draw(buckets), legend());
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  };
  await section.redraw();
  return section;
}
