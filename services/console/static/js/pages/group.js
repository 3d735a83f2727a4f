// A group's analytics: activity, DAU/WAU/MAU, retention cohorts, lifecycle, channels,
// inviters, the leaderboard and dormant members with a clean-up (preview, start, progress).
import { html, useEffect, useMemo, useState } from "../lib.js";
import { t } from "../i18n.js";
import { api, canWrite, groupPath } from "../api.js";
import {
  Chart,
  Checkbox,
  Empty,
  ErrorBox,
  Loaded,
  NumberInput,
  Section,
  Select,
  Table,
  addDays,
  errorFor,
  errorText,
  fieldErrors,
  fmtTime,
  number,
  percent,
  today,
  useLoad,
} from "../ui.js";
import { rememberZone, useZone } from "../zone.js";

const who = (row) => row.display_name || row.member_id;

export function GroupPage({ group }) {
  const zone = useZone(group);
  if (!zone) return html`<p class="state loading" role="status">${t("state.loading")}</p>`;
  return html`<${Analytics} group=${group} zone=${zone} />`;
}

function Analytics({ group, zone }) {
  const [days, setDays] = useState(30);
  const to = today(zone);
  const from = addDays(to, -(days - 1));
  const base = groupPath(group);
  const activity = useLoad(async () => {
    const answer = await api("metrics", `${base}/activity`, { query: { from, to } });
    rememberZone(group, answer.timezone);
    return answer;
  }, [group, from, to]);
  const active = useLoad(() => api("metrics", `${base}/active`, { query: { date: to } }), [group, to]);
  return html`<div class="page analytics">
    <div class="toolbar">
      <${Select} label=${t("group.range")} value=${days} onChange=${(v) => setDays(Number(v))}
        options=${[7, 30, 90].map((n) => [n, t("group.last_days", { n })])} />
      <p class="zone">${t("group.timezone", { zone })}</p>
    </div>
    <${Section} title=${t("group.active")} id="active">
      <${Loaded} load=${active}>
        ${(a) => html`<div class="kpis" role="list">
          <div class="kpi" role="listitem"><span>DAU</span><strong data-kpi="dau">${number(a.dau)}</strong></div>
          <div class="kpi" role="listitem"><span>WAU</span><strong data-kpi="wau">${number(a.wau)}</strong></div>
          <div class="kpi" role="listitem"><span>MAU</span><strong data-kpi="mau">${number(a.mau)}</strong></div>
          <div class="kpi" role="listitem"><span>${t("col.stickiness")}</span><strong>${percent(a.stickiness)}</strong></div>
        </div>`}
      <//>
    <//>
    <${Section} title=${t("group.activity")} id="activity">
      <${Loaded} load=${activity} isEmpty=${(a) => !a.days.length}>
        ${(a) => html`<${ActivityChart} days=${a.days} />`}
      <//>
    <//>
    <${Retention} group=${group} to=${to} />
    <${Lifecycle} group=${group} to=${to} />
    <div class="two">
      <${Channels} group=${group} from=${from} to=${to} />
      <${Inviters} group=${group} from=${from} to=${to} />
    </div>
    <${Leaderboard} group=${group} days=${days} />
    <${Dormant} group=${group} zone=${zone} />
  </div>`;
}

function ActivityChart({ days }) {
  const option = useMemo(() => {
    const dates = days.map((d) => d.date);
    const series = (key, type, extra = {}) => ({ name: t(`metric.${key}`), type, data: days.map((d) => d[key]), ...extra });
    return {
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: "scroll" },
      grid: { left: 48, right: 48, top: 36, bottom: 28 },
      xAxis: { type: "category", data: dates },
      yAxis: [{ type: "value", name: t("metric.messages") }, { type: "value", name: t("metric.members") }],
      series: [
        series("messages", "bar", { itemStyle: { color: "#9ab8ee" } }),
        series("active_members", "line", { yAxisIndex: 1, smooth: true }),
        series("joins", "line", { yAxisIndex: 1 }),
        series("leaves", "line", { yAxisIndex: 1 }),
      ],
    };
  }, [days]);
  return html`<${Chart} option=${option} label=${t("group.activity")} />`;
}

function Retention({ group, to }) {
  const [cohort, setCohort] = useState("day");
  const [mode, setMode] = useState("exact");
  const periods = cohort === "day" ? 7 : 6;
  const from = cohort === "day" ? addDays(to, -20) : addDays(to, -7 * 11);
  const load = useLoad(
    () => api("metrics", `${groupPath(group)}/retention`, { query: { cohort, mode, from, to, periods } }),
    [group, cohort, mode, from, to],
  );
  return html`<${Section} title=${t("group.retention")} id="retention"
    actions=${html`
      <${Select} label=${t("group.cohort")} value=${cohort} onChange=${setCohort}
        options=${[["day", t("group.cohort_day")], ["week", t("group.cohort_week")]]} />
      <${Select} label=${t("group.mode")} value=${mode} onChange=${setMode}
        options=${[["exact", t("group.mode_exact")], ["unbounded", t("group.mode_unbounded")]]} />`}>
    <${Loaded} load=${load} isEmpty=${(r) => !r.cohorts.some((c) => c.size > 0)} empty=${t("group.no_cohorts")}>
      ${(r) => html`<${RetentionHeatmap} retention=${r} periods=${periods} />`}
    <//>
  <//>`;
}

function RetentionHeatmap({ retention, periods }) {
  const option = useMemo(() => {
    const cohorts = retention.cohorts.filter((c) => c.size > 0);
    const labels = cohorts.map((c) => `${c.cohort} (${c.size})`);
    const data = [];
    cohorts.forEach((c, y) =>
      c.periods.forEach((p) => {
        if (p.rate != null) data.push([p.period - 1, y, Math.round(p.rate * 1000) / 10]);
      }),
    );
    return {
      tooltip: { formatter: (p) => `${labels[p.value[1]]} +${p.value[0] + 1}: ${p.value[2]}%` },
      grid: { left: 130, right: 16, top: 8, bottom: 64 },
      xAxis: { type: "category", data: Array.from({ length: periods }, (_, i) => `+${i + 1}`), splitArea: { show: true } },
      yAxis: { type: "category", data: labels, inverse: true, splitArea: { show: true } },
      visualMap: { min: 0, max: 100, calculable: false, orient: "horizontal", left: "center", bottom: 0, itemHeight: 120, text: ["100%", "0%"] },
      series: [{ name: t("group.retention"), type: "heatmap", data, label: { show: true, formatter: (p) => `${p.value[2]}` } }],
    };
  }, [retention, periods]);
  const height = Math.max(220, 60 + 26 * retention.cohorts.filter((c) => c.size > 0).length);
  return html`<${Chart} option=${option} label=${t("group.retention")} height=${height} />`;
}

function Lifecycle({ group, to }) {
  const [period, setPeriod] = useState("day");
  const from = period === "day" ? addDays(to, -29) : addDays(to, -7 * 11);
  const load = useLoad(
    () => api("metrics", `${groupPath(group)}/lifecycle`, { query: { period, from, to } }),
    [group, period, from, to],
  );
  const option = (l) => {
    const key = (k, color, sign = 1) => ({
      name: t(`lifecycle.${k}`),
      type: "bar",
      stack: "all",
      itemStyle: { color },
      data: l.periods.map((p) => sign * p[k]),
    });
    return {
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: "scroll" },
      grid: { left: 48, right: 16, top: 36, bottom: 28 },
      xAxis: { type: "category", data: l.periods.map((p) => p.period) },
      yAxis: { type: "value" },
      series: [key("new", "#3fb27f"), key("returning", "#5b8ff9"), key("resurrecting", "#f6bd16"), key("dormant", "#e8684a", -1)],
    };
  };
  return html`<${Section} title=${t("group.lifecycle")} id="lifecycle"
    actions=${html`<${Select} label=${t("group.period")} value=${period} onChange=${setPeriod}
      options=${[["day", t("group.cohort_day")], ["week", t("group.cohort_week")]]} />`}>
    <${Loaded} load=${load} isEmpty=${(l) => !l.periods.length}>
      ${(l) => html`<${Chart} option=${option(l)} label=${t("group.lifecycle")} height=${280} />`}
    <//>
  <//>`;
}

const qualityColumns = () => [
  { key: "joins", label: t("col.joins"), num: true },
  { key: "still_members", label: t("col.still_members"), num: true },
  { key: "spoke", label: t("col.spoke"), num: true },
  { key: "retained_d7", label: t("col.retained_d7"), num: true },
  { key: "retained_d30", label: t("col.retained_d30"), num: true },
];

function Channels({ group, from, to }) {
  const load = useLoad(() => api("metrics", `${groupPath(group)}/channels`, { query: { from, to } }), [group, from, to]);
  return html`<${Section} title=${t("group.channels")} id="channels">
    <${Loaded} load=${load} isEmpty=${(c) => !c.channels.length} empty=${t("group.no_joins")}>
      ${(c) => html`<${Table} caption=${t("group.channels")} rows=${c.channels} rowKey=${(r) => r.channel}
        columns=${[{ key: "channel", label: t("col.channel"), render: (r) => (r.channel === "(none)" ? t("group.no_channel") : r.channel) }, ...qualityColumns()]} />`}
    <//>
  <//>`;
}

function Inviters({ group, from, to }) {
  const load = useLoad(() => api("metrics", `${groupPath(group)}/inviters`, { query: { from, to, limit: 20 } }), [group, from, to]);
  return html`<${Section} title=${t("group.inviters")} id="inviters">
    <${Loaded} load=${load} isEmpty=${(c) => !c.inviters.length} empty=${t("group.no_inviters")}>
      ${(c) => html`<${Table} caption=${t("group.inviters")} rows=${c.inviters} rowKey=${(r) => r.member_id}
        columns=${[{ key: "member_id", label: t("col.member"), value: who, render: who }, ...qualityColumns()]} />`}
    <//>
  <//>`;
}

function Leaderboard({ group, days }) {
  const load = useLoad(() => api("metrics", `${groupPath(group)}/leaderboard`, { query: { days, limit: 10 } }), [group, days]);
  return html`<${Section} title=${t("group.leaderboard", { n: days })} id="leaderboard">
    <${Loaded} load=${load} isEmpty=${(l) => !l.members.length} empty=${t("group.no_messages")}>
      ${(l) => html`<${Table} caption=${t("group.leaderboard", { n: days })} rows=${l.members.map((m, i) => ({ ...m, rank: i + 1 }))}
        rowKey=${(r) => r.member_id}
        columns=${[
          { key: "rank", label: "#", num: true },
          { key: "member_id", label: t("col.member"), value: who, render: who },
          { key: "messages", label: t("metric.messages"), num: true },
        ]} />`}
    <//>
  <//>`;
}

function Dormant({ group, zone }) {
  const [days, setDays] = useState(30);
  const load = useLoad(
    () => api("metrics", `${groupPath(group)}/members/dormant`, { query: { days: days || 30, limit: 50 } }),
    [group, days],
  );
  return html`<${Section} title=${t("group.dormant")} id="dormant">
    <div class="toolbar">
      <${NumberInput} label=${t("group.silent_days")} value=${days} min="1" max="400" onInput=${setDays} />
    </div>
    <${Loaded} load=${load} isEmpty=${(d) => !d.members.length} empty=${t("group.no_dormant")}>
      ${(d) => html`<${Table} caption=${t("group.dormant")} rows=${d.members} rowKey=${(r) => r.member_id}
        columns=${[
          { key: "member_id", label: t("col.member"), value: who, render: who },
          { key: "joined_at", label: t("col.joined_at"), render: (r) => fmtTime(r.joined_at, zone) },
          { key: "last_active_at", label: t("col.last_active_at"), render: (r) => (r.last_active_at ? fmtTime(r.last_active_at, zone) : t("group.never_spoke")) },
        ]} />
        ${d.next_cursor && html`<p class="hint">${t("group.more_dormant")}</p>`}`}
    <//>
    ${canWrite(group) && html`<${Cleanup} group=${group} zone=${zone} days=${days} />`}
  <//>`;
}

const RECENT_CLEANUPS = 5;

// The clean-up in view is the group's running one, else its latest (moderation lists them
// newest first). List items leave out the members, so a preview is read whole for its list.
async function latestCleanups(base) {
  const [recent, running] = await Promise.all([
    api("moderation", base, { query: { limit: RECENT_CLEANUPS } }),
    api("moderation", base, { query: { status: "running", limit: 1 } }),
  ]);
  const current = running.cleanups[0] || recent.cleanups[0] || null;
  return {
    recent: recent.cleanups,
    current: current && current.status === "preview" ? await api("moderation", `${base}/${encodeURIComponent(current.id)}`) : current,
  };
}

function Cleanup({ group, zone, days }) {
  const [form, setForm] = useState({ inactive_days: days || 30, never_spoke_only: false, per_minute: 10 });
  const [cleanup, setCleanup] = useState(null);
  const [recent, setRecent] = useState([]);
  const [errors, setErrors] = useState(null);
  const [busy, setBusy] = useState(false);
  const base = `${groupPath(group)}/cleanups`;
  const refresh = async () => {
    const latest = await latestCleanups(base);
    setRecent(latest.recent);
    setCleanup(latest.current);
  };
  useEffect(() => {
    let gone = false;
    setCleanup(null);
    setRecent([]);
    latestCleanups(base).then(
      (latest) => gone || (setRecent(latest.recent), setCleanup(latest.current)),
      (error) => gone || setErrors({ "": errorText(error) }),
    );
    return () => {
      gone = true;
    };
  }, [group]);
  const running = cleanup && cleanup.status === "running";
  useEffect(() => {
    if (!running) return undefined;
    const timer = setInterval(() => refresh().catch((error) => setErrors({ "": errorText(error) })), 2000);
    return () => clearInterval(timer);
  }, [running, cleanup && cleanup.id]);
  const act = async (fn) => {
    setBusy(true);
    setErrors(null);
    try {
      await fn();
    } catch (error) {
      setErrors(fieldErrors(error));
    } finally {
      setBusy(false);
    }
  };
  // Show what the call answered, then the list again (the answer holds a preview's members).
  const show = async (answer) => {
    setCleanup(answer);
    setRecent((await api("moderation", base, { query: { limit: RECENT_CLEANUPS } })).cleanups);
  };
  const preview = (e) => {
    e.preventDefault();
    act(async () => show(await api("moderation", base, { method: "POST", body: form })));
  };
  const start = () => act(async () => show(await api("moderation", `${base}/${encodeURIComponent(cleanup.id)}/start`, { method: "POST" })));
  const cancel = () => act(async () => show(await api("moderation", `${base}/${encodeURIComponent(cleanup.id)}/cancel`, { method: "POST" })));
  const done = cleanup && (cleanup.status === "done" || cleanup.status === "cancelled");
  return html`<div class="cleanup" aria-labelledby="cleanup-title">
    <h3 id="cleanup-title">${t("cleanup.title")}</h3>
    <form class="form-grid" onSubmit=${preview}>
      <${NumberInput} label=${t("cleanup.inactive_days")} value=${form.inactive_days} min="1" error=${errorFor(errors, "inactive_days")}
        onInput=${(v) => setForm({ ...form, inactive_days: v })} />
      <${NumberInput} label=${t("cleanup.per_minute")} value=${form.per_minute} min="1" error=${errorFor(errors, "per_minute")}
        onInput=${(v) => setForm({ ...form, per_minute: v })} />
      <${Checkbox} label=${t("cleanup.never_spoke_only")} checked=${form.never_spoke_only}
        onChange=${(v) => setForm({ ...form, never_spoke_only: v })} />
      <div class="form-actions"><button type="submit" data-edit disabled=${busy || running}>${t("cleanup.preview")}</button></div>
    </form>
    ${errors && errors[""] && html`<${ErrorBox} text=${errors[""]} />`}
    ${cleanup && html`<div class="cleanup-state" data-cleanup-status=${cleanup.status}>
      <p>
        ${t(`cleanup.status_${cleanup.status}`)} ·
        ${t("cleanup.progress", { kicked: cleanup.kicked, count: cleanup.count })}
      </p>
      <progress max=${Math.max(cleanup.count, 1)} value=${cleanup.kicked} aria-label=${t("cleanup.progress_label")}></progress>
      ${cleanup.status === "preview" && (cleanup.count
        ? html`<${Table} caption=${t("cleanup.members")} rows=${cleanup.members.slice(0, 50)} rowKey=${(r) => r.member_id}
            columns=${[
              { key: "member_id", label: t("col.member"), value: who, render: who },
              { key: "joined_at", label: t("col.joined_at"), render: (r) => fmtTime(r.joined_at, zone) },
              { key: "last_active_at", label: t("col.last_active_at"), render: (r) => (r.last_active_at ? fmtTime(r.last_active_at, zone) : t("group.never_spoke")) },
            ]} />`
        : html`<${Empty} text=${t("cleanup.nobody")} />`)}
      <div class="form-actions">
        ${cleanup.status === "preview" && cleanup.count > 0 && html`<button type="button" class="danger" data-edit disabled=${busy}
          onClick=${() => confirm(t("cleanup.confirm", { count: cleanup.count })) && start()}>${t("cleanup.start", { count: cleanup.count })}</button>`}
        ${!done && html`<button type="button" data-edit disabled=${busy} onClick=${cancel}>${t("cleanup.cancel")}</button>`}
        ${done && html`<button type="button" disabled=${busy} onClick=${() => setCleanup(null)}>${t("cleanup.dismiss")}</button>`}
      </div>
    </div>`}
    ${recent.length > 0 && html`<h4>${t("cleanup.recent")}</h4>
      <${Table} caption=${t("cleanup.recent")} rows=${recent} rowKey=${(r) => r.id}
      columns=${[
        { key: "created_at", label: t("col.time"), render: (r) => fmtTime(r.created_at, zone) },
        { key: "status", label: t("col.status"), render: (r) => t(`cleanup.status_${r.status}`) },
        { key: "kicked", label: t("col.kicked"), num: true },
        { key: "count", label: t("col.listed"), num: true },
      ]} />`}
  </div>`;
}
