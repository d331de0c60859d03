// A webhook's custom headers in the form. The API never shows their values
// back (`****`), so an edit cannot resend what it cannot see: the headers go
// in the body only once the user changes them, and then every value is typed
// again, since the object saved replaces all of them.

import { h } from "./dom.js";

/** One row: a name, a value and its remove button, labelled by position. */
function headerRow(name, onRemove) {
  const row = h("div", { class: "header-row" });
  const nameInput = h("input", { name: "headerName", autocomplete: "off", spellcheck: "false", value: name });
  const valueInput = h("input", { name: "headerValue", autocomplete: "off", spellcheck: "false" });
  const remove = h("button", { type: "button" }, "Remove");
  remove.addEventListener("click", () => onRemove(row));
  row.append(h("label", {}, "Name"), nameInput, h("label", {}, "Value"), valueInput, remove);
  return row;
}

/** Numbers each row's labels, so every control says which header it is. */
function label(rows) {
  rows.querySelectorAll(".header-row").forEach((row, index) => {
    const [nameLabel, nameInput, valueLabel, valueInput, remove] = row.children;
    const n = index + 1;
    nameInput.id = `header-name-${n}`;
    valueInput.id = `header-value-${n}`;
    nameLabel.setAttribute("for", nameInput.id);
    valueLabel.setAttribute("for", valueInput.id);
    nameLabel.textContent = `Name of header ${n}`;
    valueLabel.textContent = `Value of header ${n}`;
    remove.textContent = `Remove header ${n}`;
  });
}

/** The rows as the API's `headers` object, or null when there are none. */
function collect(rows) {
  const headers = {};
  for (const row of rows.querySelectorAll(".header-row")) {
    const [, nameInput, , valueInput] = row.children;
    if (nameInput.value === "" && valueInput.value === "") continue;
    headers[nameInput.value.trim()] = valueInput.value;
  }
  return Object.keys(headers).length ? headers : null;
}

const NEW_HINT = "Sent with every delivery (e.g. Authorization or X-Api-Key); values are never shown back.";
const EDIT_HINT =
  "Values are never shown back. Saved without changing them, the headers stay as they are; " +
  "to change any, type every value again: the headers saved replace all the current ones.";

/**
 * The headers' fieldset, given the webhook's current ones (`{name: "****"}`)
 * if it has any. `value()` answers what the body's `headers` should be:
 * `undefined` (left out: unchanged), `null` (none) or an object.
 */
export function headersEditor(current) {
  const names = Object.keys(current || {});
  let changed = names.length === 0;
  const rows = h("div", { class: "header-rows" });
  const hint = h("small", { id: "headers-hint" }, names.length ? EDIT_HINT : NEW_HINT);
  const add = h("button", { type: "button" }, "Add header");
  const removeRow = (row) => {
    row.remove();
    label(rows);
    add.focus();
  };
  const addRow = (name = "") => {
    const row = headerRow(name, removeRow);
    rows.append(row);
    label(rows);
    return row;
  };
  add.addEventListener("click", () => addRow().children[1].focus());
  const fieldset = h("fieldset", { "aria-describedby": "headers-hint" }, h("legend", {}, "Custom headers"), hint);
  if (changed) {
    fieldset.append(rows, add);
  } else {
    const kept = h("p", { class: "kept" }, names.map((name) => `${name}: ****`).join(", "));
    const change = h("button", { type: "button" }, "Change headers");
    change.addEventListener("click", () => {
      changed = true;
      names.forEach((name) => addRow(name));
      kept.replaceWith(rows);
      change.replaceWith(add);
      rows.querySelector("input[name=headerValue]").focus();
    });
    fieldset.append(kept, change);
  }
  const value = () => {
    if (!changed) return undefined;
    // None before and none now: nothing to say.
    return collect(rows) ?? (names.length ? null : undefined);
  };
  return { element: fieldset, value };
}
