// Building elements and switching between the screens of a page.
//
// A page is a set of sections with data-screen="name"; exactly one is shown. Elements
// are built with h() so that text always goes in as text (never as HTML): names and
// reasons typed by people cannot inject markup.

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $all(selector, root = document) {
  return [...root.querySelectorAll(selector)];
}

/** h("button", {class: "big", onclick: fn, dataset: {code}}, "text", childElement) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function showScreen(name, root = document) {
  for (const section of $all("[data-screen]", root)) section.hidden = section.dataset.screen !== name;
  document.body.dataset.current = name;
}

export function currentScreen(root = document) {
  const shown = $all("[data-screen]", root).find((s) => !s.hidden);
  return shown ? shown.dataset.screen : null;
}

/** A transient message at the bottom of the page. */
export function toast(text, { kind = "info", ms = 4000 } = {}) {
  let box = $("#toast");
  if (!box) {
    box = h("div", { id: "toast", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = h("div", { class: `toast ${kind}` }, text);
  box.append(item);
  setTimeout(() => item.remove(), ms);
}

/** Count down from `seconds`, calling tick(remaining) every second and done() at zero. */
export function countdown(seconds, tick, done) {
  const end = Date.now() + seconds * 1000;
  let timer = null;
  const step = () => {
    const left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    tick(left);
    if (left <= 0) {
      clearInterval(timer);
      if (done) done();
    }
  };
  timer = setInterval(step, 250);
  step();
  return () => clearInterval(timer);
}
