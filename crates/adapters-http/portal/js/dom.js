// Building the page: elements are made with text, never from HTML strings,
// so nothing an API answer holds can become markup or script.

/** An element with attributes (`on…` keys add listeners) and children. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the main region's content and moves focus to its heading. */
export function show(...children) {
  const main = document.getElementById("main");
  main.replaceChildren();
  append(main, children);
  const heading = main.querySelector("h1");
  (heading || main).setAttribute("tabindex", "-1");
  (heading || main).focus();
}

/** Whether the status line is for the page about to be shown. */
let announcedForNextPage = false;

/**
 * Says something to every user, screen readers included. It is cleared by the
 * next page, unless it is about that page (`nextPage`: said just before going there).
 */
export function announce(message, { nextPage = false } = {}) {
  document.getElementById("status").textContent = message;
  announcedForNextPage = nextPage;
}

/** On a new page, clears what was said about an earlier one. */
export function clearStaleAnnouncement() {
  if (!announcedForNextPage) document.getElementById("status").textContent = "";
  announcedForNextPage = false;
}

/** An error as the API words it, in an alert region. */
export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error.message || String(error));
}

/** A labelled field: `control` gets an id its label points at. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("small", { id: hintId }, hint) : null);
}

/** A date-time as the reader's locale writes it. */
export function when(rfc3339) {
  return rfc3339 ? new Date(rfc3339).toLocaleString() : "—";
}

/** A button that shows `busy` while `action` runs, and its error, if any, after `place`. */
export function actionButton(text, action, attributes = {}) {
  const button = h("button", { type: "button", ...attributes }, text);
  button.addEventListener("click", async () => {
    button.disabled = true;
    const old = button.parentElement.querySelector(":scope > .error");
    if (old) old.remove();
    try {
      await action();
    } catch (error) {
      button.after(errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/**
 * A two-step action: the first press asks, "Yes" does it, "Cancel" goes back.
 * The question describes the "Yes" button, so a screen reader says both.
 */
export function confirmButton(text, question, action, { danger = true } = {}) {
  const box = h("span", { class: "confirm" });
  const kind = danger ? "danger" : null;
  const ask = h("button", { type: "button", class: kind }, text);
  // Done, the question goes and the first button is back, for another time.
  const confirmed = async () => {
    await action();
    box.replaceChildren(ask);
    if (ask.isConnected) ask.focus();
  };
  ask.addEventListener("click", () => {
    const questionId = `q-${Math.random().toString(36).slice(2)}`;
    const yes = actionButton(`Yes, ${text.toLowerCase()}`, confirmed,
      { class: kind, "aria-describedby": questionId });
    const cancel = h("button", { type: "button" }, "Cancel");
    cancel.addEventListener("click", () => {
      box.replaceChildren(ask);
      ask.focus();
    });
    box.replaceChildren(h("span", { role: "alert", id: questionId }, question), " ", yes, " ", cancel);
    yes.focus();
  });
  box.append(ask);
  return box;
}
