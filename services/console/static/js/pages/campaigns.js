// Campaigns: the list, a form per kind validating like the API (its 422s shown by the
// fields), and each campaign's participants, winners, poll results, feedback inbox and
// notifications with their delivery outcome.
import { html, useEffect, useMemo, useState } from "../lib.js";
import { t } from "../i18n.js";
import { api, canWrite, groupPath } from "../api.js";
import {
  Badge,
  Chart,
  Checkbox,
  ErrorBox,
  Loaded,
  NumberInput,
  Section,
  Select,
  Table,
  TextArea,
  TextInput,
  errorFor,
  fieldErrors,
  fmtTime,
  lineList,
  lines,
  outcomeBadge,
  useLoad,
  zonedIso,
  zonedLocal,
} from "../ui.js";
import { useZone } from "../zone.js";
import { href } from "../routes.js";

export const KINDS = ["checkin", "lottery", "challenge", "event", "welcome", "autoreply", "broadcast", "poll", "feedback", "invite"];
const STATUSES = ["scheduled", "active", "ended", "cancelled"];
const WITH_PARTICIPANTS = ["checkin", "lottery", "challenge", "event", "invite"];

// Each kind's params as the form holds them: lists as text (one a line), times as local wall time.
const DEFAULTS = {
  checkin: { keyword: "打卡", match: "exact", points: 10, streak_rewards: [], grace_days: 0 },
  lottery: { entry_keyword: "抽奖", prizes: [{ name: "", quantity: 1 }], eligibility: { joined_before: "", min_messages: 0 } },
  challenge: { goal_messages: 20, points: 100, badge: "" },
  event: { location: "", url: "", attendance_keyword: "", points: 0 },
  welcome: { text: "欢迎 {members} 加入！", batch_seconds: 60 },
  autoreply: { triggers: [{ keywords: "", reply: "" }], cooldown_seconds: 60 },
  broadcast: { messages: [{ at: "", text: "" }] },
  poll: { question: "", options: "", vote_keyword: "投票", multiple: false, eligibility: { joined_before: "", min_messages: 0 } },
  feedback: { tag: "#反馈", categories: "", points_accepted: 20 },
  invite: { points_per_invitee: 10, retain_days: 7 },
};

const blank = (v) => (v === "" || v == null ? null : v);

/** The instant for a wall-time field: the original one when the operator left it as shown
 * (a datetime-local field has no seconds), else the new wall time in the group's zone. */
function instant(local, original, zone) {
  if (!local) return null;
  return original && zonedLocal(original, zone) === local ? original : zonedIso(local, zone);
}

function toForm(campaign, zone) {
  const p = { ...DEFAULTS[campaign.kind], ...structuredClone(campaign.params || {}) };
  const eligibility = (e) => ({ ...e, joined_before: zonedLocal(e?.joined_before, zone), joined_before_iso: e?.joined_before ?? null, min_messages: e?.min_messages ?? 0 });
  if (campaign.kind === "lottery") p.eligibility = eligibility(p.eligibility);
  if (campaign.kind === "poll") {
    p.options = lineList(p.options);
    p.eligibility = eligibility(p.eligibility);
  }
  if (campaign.kind === "autoreply") p.triggers = p.triggers.map((x) => ({ ...x, keywords: lineList(x.keywords) }));
  if (campaign.kind === "broadcast") p.messages = p.messages.map((m) => ({ ...m, at: zonedLocal(m.at, zone), at_iso: m.at }));
  if (campaign.kind === "feedback") p.categories = lineList(p.categories);
  for (const key of ["entry_keyword", "badge", "location", "url", "attendance_keyword"]) if (p[key] === null) p[key] = "";
  return {
    kind: campaign.kind,
    title: campaign.title,
    starts_at: zonedLocal(campaign.starts_at, zone),
    ends_at: zonedLocal(campaign.ends_at, zone),
    announce_at: zonedLocal(campaign.announce_at, zone),
    reminders: (campaign.reminders || []).join(", "),
    params: p,
  };
}

function toParams(kind, p, zone) {
  const out = structuredClone(p);
  const eligibility = ({ joined_before_iso, ...e }) => ({ ...e, joined_before: instant(e.joined_before, joined_before_iso, zone), min_messages: e.min_messages ?? 0 });
  if (kind === "lottery") {
    out.entry_keyword = blank(p.entry_keyword);
    out.eligibility = eligibility(p.eligibility);
  }
  if (kind === "challenge") out.badge = blank(p.badge);
  if (kind === "event") for (const key of ["location", "url", "attendance_keyword"]) out[key] = blank(p[key]);
  if (kind === "checkin") out.streak_rewards = p.streak_rewards.map((s) => ({ ...s, badge: blank(s.badge) }));
  if (kind === "autoreply") out.triggers = p.triggers.map((x) => ({ ...x, keywords: lines(x.keywords) }));
  if (kind === "broadcast") out.messages = p.messages.map(({ at_iso, ...m }) => ({ ...m, at: instant(m.at, at_iso, zone) }));
  if (kind === "poll") {
    out.options = lines(p.options);
    out.eligibility = eligibility(p.eligibility);
  }
  if (kind === "feedback") out.categories = lines(p.categories);
  return out;
}

/** What the API would refuse, said before asking it (the API's 422 still has the last word). */
function checkCampaign(f) {
  const e = {};
  if (!f.title.trim()) e.title = t("form.required");
  if (!f.starts_at) e.starts_at = t("form.required");
  if (!f.ends_at) e.ends_at = t("form.required");
  if (f.starts_at && f.ends_at && f.ends_at <= f.starts_at) e.ends_at = t("campaign.ends_after_starts");
  const p = f.params;
  if (f.kind === "checkin" && !p.keyword.trim()) e["params.keyword"] = t("form.required");
  if (f.kind === "lottery") {
    if (!p.prizes.length) e["params.prizes"] = t("form.at_least_one");
    p.prizes.forEach((prize, i) => {
      if (!prize.name.trim()) e[`params.prizes.${i}.name`] = t("form.required");
      if (!(prize.quantity >= 1)) e[`params.prizes.${i}.quantity`] = t("form.positive");
    });
  }
  if (f.kind === "challenge" && !(p.goal_messages >= 1)) e["params.goal_messages"] = t("form.positive");
  if (f.kind === "autoreply") {
    if (!p.triggers.length) e["params.triggers"] = t("form.at_least_one");
    p.triggers.forEach((x, i) => {
      if (!lines(x.keywords).length) e[`params.triggers.${i}.keywords`] = t("form.at_least_one");
      if (!x.reply.trim()) e[`params.triggers.${i}.reply`] = t("form.required");
    });
  }
  if (f.kind === "broadcast") {
    if (!p.messages.length) e["params.messages"] = t("form.at_least_one");
    p.messages.forEach((m, i) => {
      if (!m.at) e[`params.messages.${i}.at`] = t("form.required");
      else if ((f.starts_at && m.at < f.starts_at) || (f.ends_at && m.at > f.ends_at)) e[`params.messages.${i}.at`] = t("campaign.at_in_window");
      if (!m.text.trim()) e[`params.messages.${i}.text`] = t("form.required");
    });
  }
  if (f.kind === "poll") {
    if (!p.question.trim()) e["params.question"] = t("form.required");
    if (lines(p.options).length < 2) e["params.options"] = t("campaign.two_options");
    if (!p.vote_keyword.trim()) e["params.vote_keyword"] = t("form.required");
  }
  if (f.kind === "feedback" && !p.tag.trim()) e["params.tag"] = t("form.required");
  return e;
}

export function CampaignsPage({ group }) {
  const zone = useZone(group);
  const [filter, setFilter] = useState({ status: "", kind: "" });
  const [creating, setCreating] = useState(false);
  const load = useLoad(() => api("campaigns", `${groupPath(group)}/campaigns`, { query: { ...filter, limit: 200 } }), [group, filter.status, filter.kind]);
  if (!zone) return html`<p class="state loading" role="status">${t("state.loading")}</p>`;
  const write = canWrite(group);
  return html`<div class="page campaigns">
    <p class="zone">${t("group.timezone", { zone })}</p>
    ${creating && html`<${CampaignForm} group=${group} zone=${zone} onCancel=${() => setCreating(false)}
      onSaved=${(c) => { setCreating(false); location.hash = href.group(group, "campaigns", c.id); }} />`}
    <${Section} title=${t("tab.campaigns")} id="campaign-list"
      actions=${write && !creating && html`<button type="button" class="primary" data-edit onClick=${() => setCreating(true)}>${t("campaign.new")}</button>`}>
      <div class="toolbar">
        <${Select} label=${t("col.status")} value=${filter.status} onChange=${(v) => setFilter({ ...filter, status: v })}
          options=${[["", t("common.any")], ...STATUSES.map((s) => [s, t(`status.${s}`)])]} />
        <${Select} label=${t("col.kind")} value=${filter.kind} onChange=${(v) => setFilter({ ...filter, kind: v })}
          options=${[["", t("common.any")], ...KINDS.map((k) => [k, t(`ckind.${k}`)])]} />
      </div>
      <${Loaded} load=${load} isEmpty=${(d) => !d.campaigns.length} empty=${t("campaign.empty")}>
        ${(d) => html`<${Table} caption=${t("tab.campaigns")} rows=${d.campaigns} rowKey=${(c) => c.id} columns=${[
          { key: "title", label: t("campaign.title"), render: (c) => html`<a href=${href.group(group, "campaigns", c.id)}>${c.title}</a>` },
          { key: "kind", label: t("col.kind"), render: (c) => t(`ckind.${c.kind}`) },
          { key: "status", label: t("col.status"), render: (c) => html`<${StatusBadge} status=${c.status} />` },
          { key: "starts_at", label: t("campaign.starts_at"), render: (c) => fmtTime(c.starts_at, zone) },
          { key: "ends_at", label: t("campaign.ends_at"), render: (c) => fmtTime(c.ends_at, zone) },
        ]} />`}
      <//>
    <//>
  </div>`;
}

function StatusBadge({ status }) {
  const kind = { active: "ok", scheduled: "pending", ended: "plain", cancelled: "warn" }[status];
  return html`<${Badge} kind=${kind}>${t(`status.${status}`)}<//>`;
}

function Rows({ label, items, add, render, error }) {
  return html`<fieldset class="rows">
    <legend>${label}</legend>
    ${items.map((item, i) => html`<div class="form-grid row">${render(item, i)}</div>`)}
    ${error && html`<small class="field-error" role="alert">${error}</small>`}
    <button type="button" onClick=${add}>${t("common.add_row")}</button>
  </fieldset>`;
}

function CampaignForm({ group, zone, campaign, onSaved, onCancel }) {
  const [f, setF] = useState(() => (campaign ? toForm(campaign, zone) : { kind: "checkin", title: "", starts_at: "", ends_at: "", announce_at: "", reminders: "", params: structuredClone(DEFAULTS.checkin) }));
  const [errors, setErrors] = useState(null);
  const [busy, setBusy] = useState(false);
  const err = (path) => errorFor(errors, path);
  const p = f.params;
  const set = (patch) => setF({ ...f, ...patch });
  const param = (key, value) => setF({ ...f, params: { ...p, [key]: value } });
  const row = (key, i, patch) => param(key, p[key].map((x, j) => (j === i ? { ...x, ...patch } : x)));
  const drop = (key, i) => html`<button type="button" class="link" onClick=${() => param(key, p[key].filter((_, j) => j !== i))}>${t("common.remove")}</button>`;
  const submit = async (event) => {
    event.preventDefault();
    const local = checkCampaign(f);
    if (Object.keys(local).length) {
      setErrors(local);
      return;
    }
    const body = {
      title: f.title.trim(),
      starts_at: instant(f.starts_at, campaign?.starts_at, zone),
      ends_at: instant(f.ends_at, campaign?.ends_at, zone),
      announce_at: instant(f.announce_at, campaign?.announce_at, zone),
      reminders: lines(f.reminders),
      params: toParams(f.kind, p, zone),
    };
    setBusy(true);
    setErrors(null);
    try {
      const base = `${groupPath(group)}/campaigns`;
      const saved = campaign
        ? await api("campaigns", `${base}/${encodeURIComponent(campaign.id)}`, { method: "PATCH", body })
        : await api("campaigns", base, { method: "POST", body: { kind: f.kind, ...body } });
      onSaved(saved);
    } catch (error) {
      setErrors(fieldErrors(error, [f.kind]));
    } finally {
      setBusy(false);
    }
  };
  const eligibility = (key) => html`
    <${TextInput} type="datetime-local" label=${t("param.joined_before")} value=${p[key].joined_before}
      error=${err(`params.${key}.joined_before`)} onInput=${(v) => param(key, { ...p[key], joined_before: v })} />
    <${NumberInput} label=${t("param.min_messages")} value=${p[key].min_messages} min="0"
      error=${err(`params.${key}.min_messages`)} onInput=${(v) => param(key, { ...p[key], min_messages: v })} />`;
  return html`<form class="editor card" id="campaign-form" onSubmit=${submit} aria-labelledby="campaign-form-title" novalidate>
    <h2 id="campaign-form-title">${campaign ? t("campaign.edit_named", { title: campaign.title }) : t("campaign.new")}</h2>
    <p class="hint">${t("campaign.times_in", { zone })}</p>
    <div class="form-grid">
      <${Select} label=${t("col.kind")} value=${f.kind} disabled=${Boolean(campaign)} options=${KINDS.map((k) => [k, t(`ckind.${k}`)])}
        onChange=${(k) => setF({ ...f, kind: k, params: structuredClone(DEFAULTS[k]) })} />
      <${TextInput} label=${t("campaign.title")} value=${f.title} required error=${err("title")} onInput=${(v) => set({ title: v })} />
      <${TextInput} type="datetime-local" label=${t("campaign.starts_at")} value=${f.starts_at} required error=${err("starts_at")} onInput=${(v) => set({ starts_at: v })} />
      <${TextInput} type="datetime-local" label=${t("campaign.ends_at")} value=${f.ends_at} required error=${err("ends_at")} onInput=${(v) => set({ ends_at: v })} />
      <${TextInput} type="datetime-local" label=${t("campaign.announce_at")} value=${f.announce_at} error=${err("announce_at")} onInput=${(v) => set({ announce_at: v })} />
      <${TextInput} label=${t("campaign.reminders")} value=${f.reminders} hint=${t("campaign.reminders_hint")} error=${err("reminders")} onInput=${(v) => set({ reminders: v })} />
    </div>
    <fieldset class="form-grid">
      <legend>${t("campaign.params", { kind: t(`ckind.${f.kind}`) })}</legend>
      ${f.kind === "checkin" && html`
        <${TextInput} label=${t("param.keyword")} value=${p.keyword} error=${err("params.keyword")} onInput=${(v) => param("keyword", v)} />
        <${Select} label=${t("param.match")} value=${p.match} options=${["exact", "prefix", "contains"].map((m) => [m, t(`param.match_${m}`)])} onChange=${(v) => param("match", v)} />
        <${NumberInput} label=${t("param.points")} value=${p.points} min="0" error=${err("params.points")} onInput=${(v) => param("points", v)} />
        <${NumberInput} label=${t("param.grace_days")} value=${p.grace_days} min="0" error=${err("params.grace_days")} onInput=${(v) => param("grace_days", v)} />
        <${Rows} label=${t("param.streak_rewards")} items=${p.streak_rewards} error=${err("params.streak_rewards")}
          add=${() => param("streak_rewards", [...p.streak_rewards, { days: 7, points: 50, badge: "" }])}
          render=${(s, i) => html`
            <${NumberInput} label=${t("param.streak_days")} value=${s.days} min="1" error=${err(`params.streak_rewards.${i}.days`)} onInput=${(v) => row("streak_rewards", i, { days: v })} />
            <${NumberInput} label=${t("param.points")} value=${s.points} min="0" onInput=${(v) => row("streak_rewards", i, { points: v })} />
            <${TextInput} label=${t("param.badge")} value=${s.badge ?? ""} onInput=${(v) => row("streak_rewards", i, { badge: v })} />
            ${drop("streak_rewards", i)}`} />`}
      ${f.kind === "lottery" && html`
        <${TextInput} label=${t("param.entry_keyword")} value=${p.entry_keyword} hint=${t("param.entry_keyword_hint")} error=${err("params.entry_keyword")} onInput=${(v) => param("entry_keyword", v)} />
        ${eligibility("eligibility")}
        <${Rows} label=${t("param.prizes")} items=${p.prizes} error=${err("params.prizes")}
          add=${() => param("prizes", [...p.prizes, { name: "", quantity: 1 }])}
          render=${(prize, i) => html`
            <${TextInput} label=${t("param.prize_name")} value=${prize.name} error=${err(`params.prizes.${i}.name`)} onInput=${(v) => row("prizes", i, { name: v })} />
            <${NumberInput} label=${t("param.quantity")} value=${prize.quantity} min="1" error=${err(`params.prizes.${i}.quantity`)} onInput=${(v) => row("prizes", i, { quantity: v })} />
            ${drop("prizes", i)}`} />`}
      ${f.kind === "challenge" && html`
        <${NumberInput} label=${t("param.goal_messages")} value=${p.goal_messages} min="1" error=${err("params.goal_messages")} onInput=${(v) => param("goal_messages", v)} />
        <${NumberInput} label=${t("param.points")} value=${p.points} min="0" error=${err("params.points")} onInput=${(v) => param("points", v)} />
        <${TextInput} label=${t("param.badge")} value=${p.badge} error=${err("params.badge")} onInput=${(v) => param("badge", v)} />`}
      ${f.kind === "event" && html`
        <${TextInput} label=${t("param.location")} value=${p.location} error=${err("params.location")} onInput=${(v) => param("location", v)} />
        <${TextInput} label=${t("param.url")} value=${p.url} type="url" error=${err("params.url")} onInput=${(v) => param("url", v)} />
        <${TextInput} label=${t("param.attendance_keyword")} value=${p.attendance_keyword} error=${err("params.attendance_keyword")} onInput=${(v) => param("attendance_keyword", v)} />
        <${NumberInput} label=${t("param.points")} value=${p.points} min="0" error=${err("params.points")} onInput=${(v) => param("points", v)} />`}
      ${f.kind === "welcome" && html`
        <${TextArea} label=${t("param.welcome_text")} value=${p.text} hint=${t("param.welcome_hint")} error=${err("params.text")} onInput=${(v) => param("text", v)} />
        <${NumberInput} label=${t("param.batch_seconds")} value=${p.batch_seconds} min="0" error=${err("params.batch_seconds")} onInput=${(v) => param("batch_seconds", v)} />`}
      ${f.kind === "autoreply" && html`
        <${NumberInput} label=${t("param.cooldown_seconds")} value=${p.cooldown_seconds} min="0" error=${err("params.cooldown_seconds")} onInput=${(v) => param("cooldown_seconds", v)} />
        <${Rows} label=${t("param.triggers")} items=${p.triggers} error=${err("params.triggers")}
          add=${() => param("triggers", [...p.triggers, { keywords: "", reply: "" }])}
          render=${(x, i) => html`
            <${TextArea} label=${t("param.keywords")} value=${x.keywords} rows="2" wide=${false} hint=${t("param.list_hint")} error=${err(`params.triggers.${i}.keywords`)} onInput=${(v) => row("triggers", i, { keywords: v })} />
            <${TextArea} label=${t("param.reply")} value=${x.reply} rows="2" wide=${false} error=${err(`params.triggers.${i}.reply`)} onInput=${(v) => row("triggers", i, { reply: v })} />
            ${drop("triggers", i)}`} />`}
      ${f.kind === "broadcast" && html`
        <${Rows} label=${t("param.messages")} items=${p.messages} error=${err("params.messages")}
          add=${() => param("messages", [...p.messages, { at: "", text: "" }])}
          render=${(m, i) => html`
            <${TextInput} type="datetime-local" label=${t("param.at")} value=${m.at} error=${err(`params.messages.${i}.at`)} onInput=${(v) => row("messages", i, { at: v })} />
            <${TextArea} label=${t("param.text")} value=${m.text} rows="2" wide=${false} error=${err(`params.messages.${i}.text`)} onInput=${(v) => row("messages", i, { text: v })} />
            ${drop("messages", i)}`} />`}
      ${f.kind === "poll" && html`
        <${TextInput} label=${t("param.question")} value=${p.question} wide error=${err("params.question")} onInput=${(v) => param("question", v)} />
        <${TextArea} label=${t("param.options")} value=${p.options} hint=${t("param.options_hint")} error=${err("params.options")} onInput=${(v) => param("options", v)} />
        <${TextInput} label=${t("param.vote_keyword")} value=${p.vote_keyword} error=${err("params.vote_keyword")} onInput=${(v) => param("vote_keyword", v)} />
        <${Checkbox} label=${t("param.multiple")} checked=${p.multiple} onChange=${(v) => param("multiple", v)} />
        ${eligibility("eligibility")}`}
      ${f.kind === "feedback" && html`
        <${TextInput} label=${t("param.tag")} value=${p.tag} error=${err("params.tag")} onInput=${(v) => param("tag", v)} />
        <${TextArea} label=${t("param.categories")} value=${p.categories} rows="2" hint=${t("param.list_hint")} error=${err("params.categories")} onInput=${(v) => param("categories", v)} />
        <${NumberInput} label=${t("param.points_accepted")} value=${p.points_accepted} min="0" error=${err("params.points_accepted")} onInput=${(v) => param("points_accepted", v)} />`}
      ${f.kind === "invite" && html`
        <${NumberInput} label=${t("param.points_per_invitee")} value=${p.points_per_invitee} min="0" error=${err("params.points_per_invitee")} onInput=${(v) => param("points_per_invitee", v)} />
        <${NumberInput} label=${t("param.retain_days")} value=${p.retain_days} min="0" step="any" error=${err("params.retain_days")} onInput=${(v) => param("retain_days", v)} />`}
    </fieldset>
    ${errors && errors[""] && html`<${ErrorBox} text=${errors[""]} />`}
    ${errors && !errors[""] && Object.keys(errors).length > 0 && html`<p class="field-error" role="alert">${t("form.fix_fields")}</p>`}
    <div class="form-actions">
      <button type="submit" class="primary" data-edit disabled=${busy}>${campaign ? t("common.save") : t("campaign.create")}</button>
      <button type="button" onClick=${onCancel}>${t("common.cancel")}</button>
    </div>
  </form>`;
}

// --- one campaign ------------------------------------------------------------------------

export function CampaignPage({ group, id }) {
  const zone = useZone(group);
  const [editing, setEditing] = useState(false);
  const [problem, setProblem] = useState(null);
  const base = `${groupPath(group)}/campaigns/${encodeURIComponent(id)}`;
  const load = useLoad(() => api("campaigns", base), [base]);
  if (!zone) return html`<p class="state loading" role="status">${t("state.loading")}</p>`;
  const write = canWrite(group);
  const cancel = async () => {
    if (!confirm(t("campaign.confirm_cancel"))) return;
    try {
      await api("campaigns", `${base}/cancel`, { method: "POST" });
      load.reload();
    } catch (error) {
      setProblem(error);
    }
  };
  return html`<div class="page campaign">
    <p><a href=${href.group(group, "campaigns")}>← ${t("tab.campaigns")}</a></p>
    <${Loaded} load=${load}>
      ${(c) => html`
        <${Section} title=${c.title} id="campaign"
          actions=${write && html`
            ${c.status === "scheduled" && html`<button type="button" data-edit onClick=${() => setEditing(!editing)}>${t("common.edit")}</button>`}
            ${(c.status === "scheduled" || c.status === "active") && html`<button type="button" class="danger" data-edit onClick=${cancel}>${t("campaign.cancel")}</button>`}`}>
          ${problem && html`<${ErrorBox} error=${problem} />`}
          <dl class="facts">
            <div><dt>${t("col.kind")}</dt><dd>${t(`ckind.${c.kind}`)}</dd></div>
            <div><dt>${t("col.status")}</dt><dd data-status=${c.status}><${StatusBadge} status=${c.status} /></dd></div>
            <div><dt>${t("campaign.starts_at")}</dt><dd>${fmtTime(c.starts_at, zone)}</dd></div>
            <div><dt>${t("campaign.ends_at")}</dt><dd>${fmtTime(c.ends_at, zone)}</dd></div>
            <div><dt>${t("campaign.announce_at")}</dt><dd>${fmtTime(c.announce_at, zone)}</dd></div>
            <div><dt>${t("campaign.reminders")}</dt><dd>${c.reminders.join(", ") || "—"}</dd></div>
          </dl>
          <details><summary>${t("campaign.params_json")}</summary><pre>${JSON.stringify(c.params, null, 2)}</pre></details>
        <//>
        ${editing && html`<${CampaignForm} group=${group} zone=${zone} campaign=${c} onCancel=${() => setEditing(false)}
          onSaved=${() => { setEditing(false); load.reload(); }} />`}
        ${c.kind === "poll" && html`<${PollResults} base=${base} active=${c.status === "active"} />`}
        ${c.kind === "lottery" && html`<${Winners} base=${base} zone=${zone} />`}
        ${c.kind === "feedback" && html`<${FeedbackInbox} base=${base} campaign=${c} write=${write} zone=${zone} />`}
        ${WITH_PARTICIPANTS.includes(c.kind) && html`<${Participants} base=${base} zone=${zone} />`}
        <${Notifications} base=${base} zone=${zone} />`}
    <//>
  </div>`;
}

function PollResults({ base, active }) {
  const load = useLoad(() => api("campaigns", `${base}/results`), [base]);
  useEffect(() => {
    if (!active) return undefined;
    const timer = setInterval(load.reload, 3000);
    return () => clearInterval(timer);
  }, [active, load.reload]);
  const option = useMemo(() => load.data && {
    grid: { left: 120, right: 24, top: 8, bottom: 24 },
    tooltip: {},
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", inverse: true, data: load.data.options.map((o) => `${o.option}. ${o.text}`) },
    series: [{ name: t("poll.votes"), type: "bar", data: load.data.options.map((o) => o.votes), label: { show: true, position: "right" } }],
  }, [load.data]);
  return html`<${Section} title=${t("poll.results")} id="poll-results"
    actions=${html`<button type="button" onClick=${load.reload}>${t("common.refresh")}</button>`}>
    <${Loaded} load=${load}>
      ${(r) => html`<p>${r.question} · <span data-voters=${r.voters}>${t("poll.voters", { n: r.voters })}</span></p>
        <${Chart} option=${option} label=${t("poll.results")} height=${Math.max(160, 40 * r.options.length + 40)} />
        <${Table} caption=${t("poll.results")} rows=${r.options} rowKey=${(o) => o.option} columns=${[
          { key: "option", label: "#", num: true },
          { key: "text", label: t("poll.option") },
          { key: "votes", label: t("poll.votes"), num: true },
        ]} />`}
    <//>
  <//>`;
}

function Winners({ base, zone }) {
  const load = useLoad(() => api("campaigns", `${base}/winners`), [base]);
  return html`<${Section} title=${t("lottery.winners")} id="winners">
    <${Loaded} load=${load}>
      ${(w) => html`<dl class="facts seeds">
          <div><dt>${t("lottery.seed_sha256")}</dt><dd><code>${w.seed_sha256 || "—"}</code></dd></div>
          <div><dt>${t("lottery.seed")}</dt><dd><code>${w.seed || t("lottery.seed_after_draw")}</code></dd></div>
          <div><dt>${t("lottery.drawn_at")}</dt><dd>${fmtTime(w.drawn_at, zone)}</dd></div>
        </dl>
        <p class="hint">${t("lottery.verify_hint")}</p>
        <${Table} caption=${t("lottery.winners")} rows=${w.winners} rowKey=${(x) => `${x.member_id}-${x.round}`} empty=${t("lottery.no_winners")} columns=${[
          { key: "member_id", label: t("col.member") },
          { key: "prize", label: t("lottery.prize") },
          { key: "round", label: t("lottery.round"), num: true },
          { key: "status", label: t("col.status") },
        ]} />`}
    <//>
  <//>`;
}

function Participants({ base, zone }) {
  const load = useLoad(() => api("campaigns", `${base}/participants`, { query: { limit: 200 } }), [base]);
  return html`<${Section} title=${t("campaign.participants")} id="participants">
    <${Loaded} load=${load} isEmpty=${(d) => !d.participants.length} empty=${t("campaign.no_participants")}>
      ${(d) => html`<${Table} caption=${t("campaign.participants")} rows=${d.participants} rowKey=${(x) => x.member_id} columns=${[
        { key: "member_id", label: t("col.member") },
        { key: "joined_at", label: t("campaign.first_seen"), render: (x) => fmtTime(x.joined_at, zone) },
        { key: "count", label: t("campaign.count"), num: true },
      ]} />${d.next_cursor && html`<p class="hint">${t("campaign.more_participants")}</p>`}`}
    <//>
  <//>`;
}

function FeedbackInbox({ base, campaign, write, zone }) {
  const [status, setStatus] = useState("new");
  const [problem, setProblem] = useState(null);
  const load = useLoad(() => api("campaigns", `${base}/feedback`, { query: { status, limit: 100 } }), [base, status]);
  const update = async (item, patch) => {
    setProblem(null);
    try {
      await api("campaigns", `${base}/feedback/${encodeURIComponent(item.id)}`, { method: "PATCH", body: patch });
      load.reload();
    } catch (error) {
      setProblem(error);
    }
  };
  const categories = campaign.params.categories || [];
  const columns = [
    { key: "created_at", label: t("col.time"), render: (x) => fmtTime(x.created_at, zone) },
    { key: "member_id", label: t("col.member") },
    { key: "text", label: t("feedback.text") },
    {
      key: "category",
      label: t("feedback.category"),
      render: (x) => (write && categories.length
        ? html`<select aria-label=${t("feedback.category_of", { id: x.id })} data-edit onChange=${(e) => update(x, { category: e.currentTarget.value || null })}>
            <option value="" selected=${!x.category}>—</option>
            ${categories.map((c) => html`<option value=${c} selected=${x.category === c}>${c}</option>`)}
          </select>`
        : x.category || "—"),
    },
    { key: "status", label: t("col.status"), render: (x) => t(`feedback.${x.status}`) },
  ];
  if (write) {
    columns.push({
      key: "decide",
      label: t("col.actions"),
      sortable: false,
      render: (x) => html`<div class="row-actions">
        ${x.status !== "accepted" && html`<button type="button" data-edit onClick=${() => update(x, { status: "accepted" })}>${t("feedback.accept")}</button>`}
        ${x.status !== "rejected" && html`<button type="button" class="danger" data-edit onClick=${() => update(x, { status: "rejected" })}>${t("feedback.reject")}</button>`}
        ${x.status === "accepted" && html`<button type="button" data-edit onClick=${() => update(x, { status: "done" })}>${t("feedback.done")}</button>`}
      </div>`,
    });
  }
  return html`<${Section} title=${t("feedback.inbox")} id="feedback"
    actions=${html`<${Select} label=${t("col.status")} value=${status} onChange=${setStatus}
      options=${["new", "accepted", "rejected", "done"].map((s) => [s, t(`feedback.${s}`)])} />`}>
    ${problem && html`<${ErrorBox} error=${problem} />`}
    <${Loaded} load=${load} isEmpty=${(d) => !d.feedback.length} empty=${t("feedback.empty")}>
      ${(d) => html`<${Table} caption=${t("feedback.inbox")} rows=${d.feedback} columns=${columns} rowKey=${(x) => x.id} />`}
    <//>
  <//>`;
}

function Notifications({ base, zone }) {
  const load = useLoad(() => api("campaigns", `${base}/notifications`, { query: { limit: 200 } }), [base]);
  return html`<${Section} title=${t("campaign.notifications")} id="notifications"
    actions=${html`<button type="button" onClick=${load.reload}>${t("common.refresh")}</button>`}>
    <${Loaded} load=${load} isEmpty=${(d) => !d.notifications.length} empty=${t("campaign.no_notifications")}>
      ${(d) => html`<${Table} caption=${t("campaign.notifications")} rows=${d.notifications} rowKey=${(n) => n.id} columns=${[
        { key: "created_at", label: t("col.time"), render: (n) => fmtTime(n.created_at, zone) },
        { key: "kind", label: t("col.kind"), render: (n) => t(`nkind.${n.kind}`) },
        { key: "text", label: t("campaign.post_text"), render: (n) => html`<span class="post-text">${n.text}</span>` },
        {
          key: "delivery",
          label: t("col.enforcement"),
          value: (n) => n.delivery?.outcome ?? "",
          render: (n) => html`${outcomeBadge(n.delivery?.outcome)}${n.delivery?.detail && html`<small class="detail">${n.delivery.detail}</small>`}`,
        },
      ]} />`}
    <//>
  <//>`;
}
