// Shared pieces of every page: loading/error/empty states, tables, form fields, charts, times.
import * as echarts from "echarts";
import { html, useEffect, useRef, useState, useCallback } from "./lib.js";
import { t, locale } from "./i18n.js";
import { getConfig } from "./api.js";

/** Load data with fn(); returns {loading, error, data, reload}. New deps start afresh
 * (no stale data from the previous group or campaign); reload() keeps what is shown. */
export function useLoad(fn, deps) {
  const [state, setState] = useState({ loading: true, error: null, data: null });
  const serial = useRef(0);
  const run = useCallback(async (fresh) => {
    const mine = ++serial.current;
    setState((old) => (fresh ? { loading: true, error: null, data: null } : { ...old, loading: true, error: null }));
    try {
      const data = await fn();
      if (mine === serial.current) setState({ loading: false, error: null, data });
    } catch (error) {
      if (mine === serial.current) setState({ loading: false, error, data: null });
    }
  }, deps);
  useEffect(() => {
    run(true);
  }, [run]);
  const reload = useCallback(() => run(false), [run]);
  return { ...state, reload };
}

/** The sentence an operator reads for a failed call. */
export function errorText(error) {
  if (!error) return "";
  const service = error.service ?? "";
  switch (error.status) {
    case 0:
      return t("error.unreachable", { service, url: getConfig()?.services?.[service] ?? "" });
    case 401:
      return t("error.unauthorized");
    case 403:
      return t("error.forbidden", { detail: detailText(error.detail) });
    case 404:
      return t("error.not_found", { detail: detailText(error.detail) });
    case 409:
      return t("error.conflict", { detail: detailText(error.detail) });
    case 422:
      return t("error.invalid", { detail: detailText(error.detail) });
    case 503:
      return t("error.unavailable", { service });
    default:
      return t("error.other", { status: error.status, detail: detailText(error.detail) });
  }
}

function detailText(detail) {
  if (!detail) return "";
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  return JSON.stringify(detail);
}

/** Map a 422's field errors to dotted paths ("params.keywords"); unknown ones under "". */
export function fieldErrors(error, tags = []) {
  const found = {};
  if (!error || error.status !== 422 || !Array.isArray(error.detail)) {
    if (error) found[""] = errorText(error);
    return found;
  }
  for (const item of error.detail) {
    const path = (item.loc || [])
      .filter((part, i) => !(i === 0 && part === "body") && !tags.includes(part))
      .join(".");
    found[path] = found[path] ? `${found[path]}; ${item.msg}` : item.msg;
  }
  return found;
}

/** The error for a field path: its own, or any under it (params.prizes.0.quantity). */
export function errorFor(errors, path) {
  if (!errors) return "";
  if (errors[path]) return errors[path];
  const nested = Object.entries(errors).filter(([key]) => key.startsWith(`${path}.`));
  return nested.map(([key, msg]) => `${key.slice(path.length + 1)}: ${msg}`).join("; ");
}

export function Loading() {
  return html`<p class="state loading" role="status" aria-live="polite">${t("state.loading")}</p>`;
}

export function ErrorBox({ error, text, retry }) {
  return html`<div class="state error" role="alert">
    <p>${text ?? errorText(error)}</p>
    ${retry && html`<button type="button" onClick=${retry}>${t("action.retry_load")}</button>`}
  </div>`;
}

export function Empty({ text }) {
  return html`<p class="state empty">${text ?? t("state.empty")}</p>`;
}

/** Render loading, error or empty states, else children(data). */
export function Loaded({ load, empty, isEmpty, children }) {
  if (load.loading && load.data == null) return html`<${Loading} />`;
  if (load.error) return html`<${ErrorBox} error=${load.error} retry=${load.reload} />`;
  if (isEmpty ? isEmpty(load.data) : load.data == null) return html`<${Empty} text=${empty} />`;
  return children(load.data);
}

export function Section({ title, id, actions, children }) {
  return html`<section class="card" id=${id} aria-labelledby=${id && `${id}-title`}>
    <header class="card-head">
      <h2 id=${id && `${id}-title`}>${title}</h2>
      ${actions && html`<div class="card-actions">${actions}</div>`}
    </header>
    ${children}
  </section>`;
}

/** A sortable table; columns: {key, label, render, value, num}. */
export function Table({ columns, rows, caption, initialSort, rowKey, empty }) {
  const [sort, setSort] = useState(initialSort || null);
  if (!rows.length) return html`<${Empty} text=${empty} />`;
  let sorted = rows;
  if (sort) {
    const column = columns.find((c) => c.key === sort.key);
    const value = column.value || ((row) => row[column.key]);
    sorted = [...rows].sort((a, b) => {
      const x = value(a);
      const y = value(b);
      const order = typeof x === "number" && typeof y === "number" ? x - y : String(x ?? "").localeCompare(String(y ?? ""));
      return sort.desc ? -order : order;
    });
  }
  const toggle = (key) =>
    setSort((old) => (old && old.key === key ? { key, desc: !old.desc } : { key, desc: true }));
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label=${caption}>
    <table>
      <caption class="sr-only">${caption}</caption>
      <thead>
        <tr>
          ${columns.map((c) => {
            const state = sort && sort.key === c.key ? (sort.desc ? "descending" : "ascending") : "none";
            return html`<th scope="col" class=${c.num ? "num" : ""} aria-sort=${c.sortable === false ? undefined : state}>
              ${c.sortable === false
                ? c.label
                : html`<button type="button" class="sort" onClick=${() => toggle(c.key)}>
                    ${c.label}<span aria-hidden="true">${state === "descending" ? " ▼" : state === "ascending" ? " ▲" : ""}</span>
                  </button>`}
            </th>`;
          })}
        </tr>
      </thead>
      <tbody>
        ${sorted.map(
          (row, i) => html`<tr key=${rowKey ? rowKey(row) : i}>
            ${columns.map((c) => html`<td class=${c.num ? "num" : ""}>${c.render ? c.render(row) : row[c.key]}</td>`)}
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

let fieldSerial = 0;

/** A labelled control with its error next to it; children gets the control's id. */
export function Field({ label, error, hint, children, wide }) {
  const id = useRef(`f${++fieldSerial}`).current;
  return html`<div class=${`field${wide ? " wide" : ""}${error ? " has-error" : ""}`}>
    <label for=${id}>${label}</label>
    ${children(id, error ? `${id}-err` : hint ? `${id}-hint` : undefined)}
    ${hint && !error && html`<small id=${`${id}-hint`} class="hint">${hint}</small>`}
    ${error && html`<small id=${`${id}-err`} class="field-error" role="alert">${error}</small>`}
  </div>`;
}

export function TextInput({ label, value, onInput, error, hint, type = "text", required, wide, ...rest }) {
  return html`<${Field} label=${label} error=${error} hint=${hint} wide=${wide}>
    ${(id, described) => html`<input id=${id} type=${type} value=${value ?? ""} required=${required}
      aria-invalid=${error ? "true" : undefined} aria-describedby=${described}
      onInput=${(e) => onInput(e.currentTarget.value)} ...${rest} />`}
  <//>`;
}

export function NumberInput(props) {
  const { onInput, value } = props;
  return html`<${TextInput} ...${props} type="number" value=${value ?? ""}
    onInput=${(v) => onInput(v === "" ? null : Number(v))} />`;
}

export function TextArea({ label, value, onInput, error, hint, rows = 3, wide = true, ...rest }) {
  return html`<${Field} label=${label} error=${error} hint=${hint} wide=${wide}>
    ${(id, described) => html`<textarea id=${id} rows=${rows} aria-invalid=${error ? "true" : undefined}
      aria-describedby=${described} value=${value ?? ""} onInput=${(e) => onInput(e.currentTarget.value)} ...${rest}></textarea>`}
  <//>`;
}

export function Select({ label, value, onChange, options, error, hint, ...rest }) {
  return html`<${Field} label=${label} error=${error} hint=${hint}>
    ${(id, described) => html`<select id=${id} aria-describedby=${described}
      onChange=${(e) => onChange(e.currentTarget.value)} ...${rest}>
      ${options.map(([v, text]) => html`<option value=${v} selected=${String(v) === String(value)}>${text}</option>`)}
    </select>`}
  <//>`;
}

export function Checkbox({ label, checked, onChange, error, ...rest }) {
  const id = useRef(`c${++fieldSerial}`).current;
  return html`<div class=${`field check${error ? " has-error" : ""}`}>
    <input id=${id} type="checkbox" checked=${Boolean(checked)} onChange=${(e) => onChange(e.currentTarget.checked)} ...${rest} />
    <label for=${id}>${label}</label>
    ${error && html`<small class="field-error" role="alert">${error}</small>`}
  </div>`;
}

/** A list edited as one item per line. */
export const lines = (text) => String(text ?? "").split(/\r?\n|[,，]/).map((s) => s.trim()).filter(Boolean);
export const lineList = (list) => (list || []).join("\n");

export function Badge({ kind, children }) {
  return html`<span class=${`badge badge-${kind || "plain"}`}>${children}</span>`;
}

export function outcomeBadge(outcome) {
  if (!outcome) return html`<${Badge} kind="pending">${t("outcome.pending")}<//>`;
  const kind = { delivered: "ok", recorded: "ok", unsupported: "warn", expired: "warn" }[outcome] || "bad";
  return html`<${Badge} kind=${kind}>${t(`outcome.${outcome}`)}<//>`;
}

/** A chart; `option` is an ECharts option. data-total says how much it draws (tests read it). */
export function Chart({ option, label, height = 320 }) {
  const element = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    chart.current = echarts.init(element.current, null, { renderer: "canvas" });
    const observer = new ResizeObserver(() => chart.current && chart.current.resize());
    observer.observe(element.current);
    return () => {
      observer.disconnect();
      chart.current.dispose();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    chart.current.setOption({ animation: false, ...option }, true);
  }, [option]);
  const total = (option.series || []).reduce(
    (sum, s) => sum + (s.data || []).reduce((acc, d) => acc + Math.abs(Number(Array.isArray(d) ? d[d.length - 1] : d?.value ?? d) || 0), 0),
    0,
  );
  return html`<div class="chart" ref=${element} role="img" aria-label=${label} data-total=${total}
    style=${{ height: `${height}px` }}></div>`;
}

// --- times: shown in the group's timezone, the zone named on the page -------------------

export function fmtTime(iso, timeZone) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(locale(), {
    timeZone: timeZone || getConfig()?.timezone || "UTC",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(date);
}

function zoneParts(timeZone, date) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(date);
  return Object.fromEntries(parts.map((p) => [p.type, p.value]));
}

/** Today's date (YYYY-MM-DD) in a timezone. */
export function today(timeZone) {
  const p = zoneParts(timeZone, new Date());
  return `${p.year}-${p.month}-${p.day}`;
}

export function addDays(date, days) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

function offsetMinutes(timeZone, date) {
  const p = zoneParts(timeZone, date);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return Math.round((asUtc - date.getTime()) / 60000);
}

/** "2026-12-01T09:00" read as wall time in timeZone -> "2026-12-01T09:00:00+08:00". */
export function zonedIso(local, timeZone) {
  if (!local) return null;
  const [day, time = "00:00"] = local.split("T");
  const [y, m, d] = day.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  let offset = offsetMinutes(timeZone, new Date(wall));
  offset = offsetMinutes(timeZone, new Date(wall - offset * 60000));
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const pad = (n) => String(n).padStart(2, "0");
  return `${day}T${pad(hh)}:${pad(mm)}:00${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** An ISO instant as "YYYY-MM-DDTHH:MM" wall time in timeZone (for datetime-local inputs). */
export function zonedLocal(iso, timeZone) {
  if (!iso) return "";
  const p = zoneParts(timeZone, new Date(iso));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

export const percent = (rate) => (rate == null ? "—" : `${(rate * 100).toFixed(1)}%`);
export const number = (n) => (n == null ? "—" : new Intl.NumberFormat(locale()).format(n));
