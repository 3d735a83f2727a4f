// Every visible string goes through t(): one small JSON dictionary per locale (i18n/*.json).
const LOCALES = ["zh-CN", "en"];
const STORAGE_KEY = "qunyun.locale";
const dictionaries = {};
let current = "zh-CN";
const listeners = new Set();

async function load(locale) {
  if (!dictionaries[locale]) {
    const answer = await fetch(`./i18n/${locale}.json`);
    dictionaries[locale] = await answer.json();
  }
  return dictionaries[locale];
}

export async function initLocale(fallback) {
  const saved = localStorage.getItem(STORAGE_KEY);
  const wanted = LOCALES.includes(saved) ? saved : LOCALES.includes(fallback) ? fallback : "zh-CN";
  await setLocale(wanted);
}

export async function setLocale(locale) {
  await load(locale);
  current = locale;
  localStorage.setItem(STORAGE_KEY, locale);
  document.documentElement.lang = locale;
  for (const listener of listeners) listener(locale);
}

export function locale() {
  return current;
}

export function otherLocale() {
  return current === "zh-CN" ? "en" : "zh-CN";
}

export function onLocaleChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The string for key in the current locale, with {name} placeholders filled from params. */
export function t(key, params = {}) {
  const text = dictionaries[current]?.[key] ?? dictionaries["zh-CN"]?.[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}
