// Page text in Simplified Chinese (first, the default) and English.
//
// Each page registers its own strings with addStrings({key: ["中文", "English"]}) and
// marks elements with data-i18n="key" (text) or data-i18n-placeholder / data-i18n-title
// / data-i18n-aria-label. setLang() re-renders every marked element; dynamic text is
// built with t(key, params), where "{name}" in a string is replaced by params.name.

const STRINGS = new Map();
const listeners = new Set();
let lang = "zh";

export function addStrings(table) {
  for (const [key, pair] of Object.entries(table)) STRINGS.set(key, pair);
}

export function getLang() {
  return lang;
}

export function setLang(next, root = document) {
  lang = next === "en" ? "en" : "zh";
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  translate(root);
  for (const listener of listeners) listener(lang);
}

export function onLangChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function t(key, params = {}) {
  const pair = STRINGS.get(key);
  if (!pair) return key;
  const text = lang === "zh" ? pair[0] : pair[1];
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : ""));
}

/** Both languages, Chinese first: for notices that everyone should be able to read. */
export function both(key, params = {}) {
  const pair = STRINGS.get(key);
  if (!pair) return key;
  const fill = (text) => text.replace(/\{(\w+)\}/g, (_, n) => (n in params ? String(params[n]) : ""));
  return `${fill(pair[0])} / ${fill(pair[1])}`;
}

/** The ``name_zh`` / ``name_en`` field (or ``zh`` / ``en`` with base "") in the current language. */
export function pick(record, base = "name") {
  if (!record) return "";
  const zh = base ? `${base}_zh` : "zh", en = base ? `${base}_en` : "en";
  return (lang === "zh" ? record[zh] : record[en]) || record[zh] || "";
}

/** Server messages are "中文 / English": show the half in the current language. */
export function serverText(message) {
  if (typeof message !== "string") return "";
  const cut = message.indexOf(" / ");
  if (cut < 0) return message;
  return lang === "zh" ? message.slice(0, cut) : message.slice(cut + 3);
}

export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
}

addStrings({
  lang_toggle: ["English", "中文"],
  connecting: ["正在连接…", "Connecting…"],
  offline: ["网络已断开，正在重连…", "Connection lost, reconnecting…"],
  online: ["已连接", "Connected"],
  error_generic: ["出错了，请重试", "Something went wrong, please try again"],
  minutes_about: ["约 {n} 分钟", "about {n} min"],
  no_staff: ["暂无可用工作人员", "No staff available"],
  seconds: ["{n} 秒", "{n} s"],
  cancel: ["取消", "Cancel"],
  ok: ["确定", "OK"],
  back: ["返回", "Back"],
});
