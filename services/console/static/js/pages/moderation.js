// Moderation: rules (editor per kind, the rules/test box), policy, the case queue with
// enforcement outcomes, reversal and manual actions, join requests, reports, blocklists.
import { html, useState } from "../lib.js";
import { t } from "../i18n.js";
import { allGroups, api, canWrite, groupPath } from "../api.js";
import {
  Badge,
  Checkbox,
  Empty,
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
} from "../ui.js";
import { useZone } from "../zone.js";

export const ACTIONS = ["flag", "delete", "warn", "mute", "kick", "ban"];
const MANUAL_ACTIONS = ["delete", "warn", "mute", "unmute", "kick", "ban", "unban"];
const MESSAGE_KINDS = ["text", "image", "link", "file", "voice", "video", "sticker", "card", "miniprogram", "other"];
// Each kind's params as the editor holds them (lists as text, one item a line).
const KIND_DEFAULTS = {
  keywords: { keywords: "", allow: "", match: "substring" },
  regex: { pattern: "" },
  links: { allowed_domains: "" },
  message_kinds: { kinds: ["miniprogram", "card"] },
  qr_code: {},
  flood: { max_messages: 5, seconds: 10 },
  duplicates: { max_repeats: 3, seconds: 60 },
  mentions: { max_mentions: 5 },
  display_name: { pattern: "" },
  newcomer: { within_seconds: 86400, kinds: [], links: true },
};
const LIST_PARAMS = ["keywords", "allow", "allowed_domains"];

const actionOptions = (list = ACTIONS) => list.map((a) => [a, t(`action.${a}`)]);

export function ModerationPage({ group }) {
  const zone = useZone(group);
  const rules = useLoad(() => api("moderation", `${groupPath(group)}/rules`, { query: { limit: 500 } }), [group]);
  if (!zone) return html`<p class="state loading" role="status">${t("state.loading")}</p>`;
  const names = Object.fromEntries((rules.data?.rules || []).map((r) => [r.id, r.name]));
  const write = canWrite(group);
  return html`<div class="page moderation">
    <nav class="subnav" aria-label=${t("nav.on_this_page")}>
      ${["rules", "policy", "cases", "join-requests", "reports", "blocklists"].map(
        (id) => html`<a href=${`#${id}`} onClick=${(e) => jump(e, id)}>${t(`mod.${id}`)}</a>`,
      )}
    </nav>
    <${Rules} group=${group} rules=${rules} write=${write} zone=${zone} />
    ${write && html`<${TestBox} group=${group} names=${names} />`}
    <${Policy} group=${group} write=${write} />
    <${Cases} group=${group} write=${write} zone=${zone} />
    <${JoinRequests} group=${group} write=${write} zone=${zone} />
    <${Reports} group=${group} zone=${zone} />
    <${Blocklists} write=${write} zone=${zone} />
  </div>`;
}

/** In-page links without touching the route in the hash. */
function jump(event, id) {
  event.preventDefault();
  const target = document.getElementById(id);
  if (target) {
    target.scrollIntoView();
    target.querySelector("h2")?.setAttribute("tabindex", "-1");
    target.querySelector("h2")?.focus();
  }
}

// --- rules ---------------------------------------------------------------------------

function editable(rule) {
  const params = { ...KIND_DEFAULTS[rule.kind], ...rule.params };
  for (const key of LIST_PARAMS) if (Array.isArray(params[key])) params[key] = lineList(params[key]);
  return { ...rule, params };
}

function payloadParams(kind, params) {
  const out = { ...params };
  for (const key of LIST_PARAMS) if (key in out) out[key] = lines(out[key]);
  return kind === "qr_code" ? {} : out;
}

/** What the API would refuse, said before asking it. */
function checkRule(draft) {
  const errors = {};
  if (!draft.name.trim()) errors.name = t("form.required");
  const p = draft.params;
  if (draft.kind === "keywords" && !lines(p.keywords).length) errors["params.keywords"] = t("form.at_least_one");
  if ((draft.kind === "regex" || draft.kind === "display_name") && !String(p.pattern || "").trim()) errors["params.pattern"] = t("form.required");
  if (draft.kind === "message_kinds" && !p.kinds.length) errors["params.kinds"] = t("form.at_least_one");
  for (const key of ["max_messages", "seconds", "max_repeats", "max_mentions", "within_seconds"]) {
    if (key in p && !(p[key] >= 1)) errors[`params.${key}`] = t("form.positive");
  }
  if (draft.action === "mute" && draft.mute_seconds != null && !(draft.mute_seconds >= 1)) errors.mute_seconds = t("form.positive");
  return errors;
}

function Rules({ group, rules, write, zone }) {
  const [editing, setEditing] = useState(null);
  const [problem, setProblem] = useState(null);
  const remove = async (rule) => {
    if (!confirm(t("rules.confirm_delete", { name: rule.name }))) return;
    try {
      await api("moderation", `${groupPath(group)}/rules/${encodeURIComponent(rule.id)}`, { method: "DELETE" });
      rules.reload();
    } catch (error) {
      setProblem(error);
    }
  };
  const columns = [
    { key: "name", label: t("col.name") },
    { key: "kind", label: t("col.kind"), render: (r) => t(`kind.${r.kind}`) },
    { key: "action", label: t("col.action"), render: (r) => t(`action.${r.action}`) },
    { key: "mode", label: t("col.mode"), render: (r) => html`<${Badge} kind=${r.mode === "shadow" ? "warn" : "ok"}>${t(`mode.${r.mode}`)}<//>` },
    { key: "enabled", label: t("col.enabled"), render: (r) => (r.enabled ? t("common.yes") : t("common.no")) },
    { key: "updated_at", label: t("col.updated_at"), render: (r) => fmtTime(r.updated_at, zone) },
  ];
  if (write) {
    columns.push({
      key: "edit",
      label: t("col.actions"),
      sortable: false,
      render: (r) => html`<div class="row-actions">
        <button type="button" data-edit onClick=${() => setEditing(editable(r))} aria-label=${t("rules.edit_named", { name: r.name })}>${t("common.edit")}</button>
        <button type="button" class="danger" data-edit onClick=${() => remove(r)} aria-label=${t("rules.delete_named", { name: r.name })}>${t("common.delete")}</button>
      </div>`,
    });
  }
  const fresh = () => ({ name: "", kind: "keywords", action: "delete", mute_seconds: null, mode: "enforce", enabled: true, delete_message: true, params: { ...KIND_DEFAULTS.keywords } });
  return html`<${Section} title=${t("mod.rules")} id="rules"
    actions=${write && !editing && html`<button type="button" class="primary" data-edit onClick=${() => setEditing(fresh())}>${t("rules.new")}</button>`}>
    ${problem && html`<${ErrorBox} error=${problem} />`}
    ${editing && html`<${RuleEditor} group=${group} initial=${editing}
      onDone=${() => { setEditing(null); rules.reload(); }} onCancel=${() => setEditing(null)} />`}
    <${Loaded} load=${rules} isEmpty=${(d) => !d.rules.length} empty=${t("rules.empty")}>
      ${(d) => html`<${Table} caption=${t("mod.rules")} rows=${d.rules} columns=${columns} rowKey=${(r) => r.id} />`}
    <//>
  <//>`;
}

function RuleEditor({ group, initial, onDone, onCancel }) {
  const [draft, setDraft] = useState(initial);
  const [errors, setErrors] = useState(null);
  const [busy, setBusy] = useState(false);
  const creating = !initial.id;
  const set = (patch) => setDraft({ ...draft, ...patch });
  const setParam = (key, value) => setDraft({ ...draft, params: { ...draft.params, [key]: value } });
  const err = (path) => errorFor(errors, path);
  const submit = async (event) => {
    event.preventDefault();
    const local = checkRule(draft);
    if (Object.keys(local).length) {
      setErrors(local);
      return;
    }
    const body = {
      name: draft.name.trim(),
      kind: draft.kind,
      action: draft.action,
      mute_seconds: draft.action === "mute" || draft.action === "ban" ? draft.mute_seconds || null : null,
      mode: draft.mode,
      enabled: draft.enabled,
      delete_message: draft.delete_message,
      params: payloadParams(draft.kind, draft.params),
    };
    setBusy(true);
    setErrors(null);
    try {
      const base = `${groupPath(group)}/rules`;
      if (creating) await api("moderation", base, { method: "POST", body });
      else await api("moderation", `${base}/${encodeURIComponent(initial.id)}`, { method: "PATCH", body });
      onDone();
    } catch (error) {
      setErrors(fieldErrors(error, [draft.kind]));
    } finally {
      setBusy(false);
    }
  };
  const p = draft.params;
  return html`<form class="editor" id="rule-editor" onSubmit=${submit} aria-labelledby="rule-editor-title" novalidate>
    <h3 id="rule-editor-title">${creating ? t("rules.new") : t("rules.edit_named", { name: initial.name })}</h3>
    <div class="form-grid">
      <${TextInput} label=${t("col.name")} value=${draft.name} required onInput=${(v) => set({ name: v })} error=${err("name")} />
      <${Select} label=${t("col.kind")} value=${draft.kind} disabled=${!creating} error=${err("kind")}
        options=${Object.keys(KIND_DEFAULTS).map((k) => [k, t(`kind.${k}`)])}
        onChange=${(k) => setDraft({ ...draft, kind: k, params: { ...KIND_DEFAULTS[k] } })} />
      <${Select} label=${t("col.action")} value=${draft.action} options=${actionOptions()} error=${err("action")} onChange=${(v) => set({ action: v })} />
      ${(draft.action === "mute" || draft.action === "ban") && html`<${NumberInput} label=${t("rules.mute_seconds")} value=${draft.mute_seconds} min="1"
        hint=${t("rules.mute_seconds_hint")} error=${err("mute_seconds")} onInput=${(v) => set({ mute_seconds: v })} />`}
      <${Select} label=${t("col.mode")} value=${draft.mode} error=${err("mode")}
        options=${[["enforce", t("mode.enforce")], ["shadow", t("mode.shadow")]]} onChange=${(v) => set({ mode: v })} />
      <${Checkbox} label=${t("col.enabled")} checked=${draft.enabled} onChange=${(v) => set({ enabled: v })} />
      <${Checkbox} label=${t("rules.delete_message")} checked=${draft.delete_message} onChange=${(v) => set({ delete_message: v })} />
    </div>
    <fieldset class="form-grid">
      <legend>${t("rules.params", { kind: t(`kind.${draft.kind}`) })}</legend>
      ${draft.kind === "keywords" && html`
        <${TextArea} label=${t("param.keywords")} value=${p.keywords} hint=${t("param.list_hint")} error=${err("params.keywords")} onInput=${(v) => setParam("keywords", v)} />
        <${TextArea} label=${t("param.allow")} value=${p.allow} hint=${t("param.allow_hint")} error=${err("params.allow")} onInput=${(v) => setParam("allow", v)} />
        <${Select} label=${t("param.match")} value=${p.match} error=${err("params.match")}
          options=${[["substring", t("param.match_substring")], ["word", t("param.match_word")]]} onChange=${(v) => setParam("match", v)} />`}
      ${(draft.kind === "regex" || draft.kind === "display_name") && html`
        <${TextInput} label=${t("param.pattern")} value=${p.pattern} wide hint=${t(`param.pattern_hint_${draft.kind}`)} error=${err("params.pattern")} onInput=${(v) => setParam("pattern", v)} />`}
      ${draft.kind === "links" && html`
        <${TextArea} label=${t("param.allowed_domains")} value=${p.allowed_domains} hint=${t("param.list_hint")} error=${err("params.allowed_domains")} onInput=${(v) => setParam("allowed_domains", v)} />`}
      ${(draft.kind === "message_kinds" || draft.kind === "newcomer") && html`
        <fieldset class="checks">
          <legend>${t("param.kinds")}</legend>
          ${MESSAGE_KINDS.map((k) => html`<${Checkbox} label=${t(`msgkind.${k}`)} checked=${p.kinds.includes(k)}
            onChange=${(on) => setParam("kinds", on ? [...p.kinds, k] : p.kinds.filter((x) => x !== k))} />`)}
          ${err("params.kinds") && html`<small class="field-error" role="alert">${err("params.kinds")}</small>`}
        </fieldset>`}
      ${draft.kind === "newcomer" && html`
        <${NumberInput} label=${t("param.within_seconds")} value=${p.within_seconds} min="1" error=${err("params.within_seconds")} onInput=${(v) => setParam("within_seconds", v)} />
        <${Checkbox} label=${t("param.links")} checked=${p.links} onChange=${(v) => setParam("links", v)} />`}
      ${draft.kind === "flood" && html`
        <${NumberInput} label=${t("param.max_messages")} value=${p.max_messages} min="1" error=${err("params.max_messages")} onInput=${(v) => setParam("max_messages", v)} />
        <${NumberInput} label=${t("param.seconds")} value=${p.seconds} min="1" error=${err("params.seconds")} onInput=${(v) => setParam("seconds", v)} />`}
      ${draft.kind === "duplicates" && html`
        <${NumberInput} label=${t("param.max_repeats")} value=${p.max_repeats} min="1" error=${err("params.max_repeats")} onInput=${(v) => setParam("max_repeats", v)} />
        <${NumberInput} label=${t("param.seconds")} value=${p.seconds} min="1" error=${err("params.seconds")} onInput=${(v) => setParam("seconds", v)} />`}
      ${draft.kind === "mentions" && html`
        <${NumberInput} label=${t("param.max_mentions")} value=${p.max_mentions} min="1" error=${err("params.max_mentions")} onInput=${(v) => setParam("max_mentions", v)} />`}
      ${draft.kind === "qr_code" && html`<p class="hint">${t("param.qr_code")}</p>`}
    </fieldset>
    ${errors && errors[""] && html`<${ErrorBox} text=${errors[""]} />`}
    <div class="form-actions">
      <button type="submit" class="primary" data-edit disabled=${busy}>${t("common.save")}</button>
      <button type="button" onClick=${onCancel}>${t("common.cancel")}</button>
    </div>
  </form>`;
}

// --- the rules/test box -----------------------------------------------------------------

function TestBox({ group, names }) {
  const [sample, setSample] = useState({ text: "", member_id: "", kind: "text" });
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { type: "message.created", text: sample.text, kind: sample.kind };
      if (sample.member_id.trim()) body.member_id = sample.member_id.trim();
      setResult(await api("moderation", `${groupPath(group)}/rules/test`, { method: "POST", body }));
    } catch (failure) {
      setError(failure);
      setResult(null);
    } finally {
      setBusy(false);
    }
  };
  return html`<${Section} title=${t("test.title")} id="rules-test">
    <p class="hint">${t("test.intro")}</p>
    <form class="form-grid" onSubmit=${submit}>
      <${TextArea} label=${t("test.message")} value=${sample.text} rows="2" onInput=${(v) => setSample({ ...sample, text: v })} />
      <${TextInput} label=${t("test.member")} value=${sample.member_id} placeholder="test:member" onInput=${(v) => setSample({ ...sample, member_id: v })} />
      <${Select} label=${t("test.kind")} value=${sample.kind} options=${MESSAGE_KINDS.map((k) => [k, t(`msgkind.${k}`)])}
        onChange=${(v) => setSample({ ...sample, kind: v })} />
      <div class="form-actions"><button type="submit" class="primary" data-edit disabled=${busy}>${t("test.run")}</button></div>
    </form>
    ${error && html`<${ErrorBox} error=${error} />`}
    ${result && html`<div class="test-result" role="status" aria-live="polite" data-test-action=${result.action || "none"}>
      <p class="verdict">
        ${result.action ? t("test.would", { action: t(`action.${result.action}`) }) : t("test.nothing")}
        ${result.deletes_message && html` · ${t("test.deletes")}`}
        ${result.exempt && html` · ${t("test.exempt")}`}
        ${result.escalation && html` · ${t("test.escalation", { action: t(`action.${result.escalation.action}`), strikes: result.strikes })}`}
      </p>
      ${result.matched.length
        ? html`<ul class="matches">${result.matched.map((m) => html`<li data-rule-id=${m.rule_id}>
            <strong>${names[m.rule_id] || m.rule_id}</strong> (${t(`kind.${m.kind}`)}) — ${t("test.evidence")}: <code>${m.evidence}</code></li>`)}</ul>`
        : html`<${Empty} text=${t("test.no_match")} />`}
      ${result.shadow_matched.length > 0 && html`<p class="hint">${t("test.shadow", { names: result.shadow_matched.map((m) => names[m.rule_id] || m.rule_id).join(", ") })}</p>`}
    </div>`}
  <//>`;
}

// --- policy -------------------------------------------------------------------------------

function policyDraft(policy) {
  return {
    strike_window_days: policy.strike_window_days,
    ladder: policy.ladder.map((s) => ({ ...s })),
    exempt_members: lineList(policy.exempt_members),
    notices: { warn: "", mute: "", kick: "", ban: "", verify: "", ...Object.fromEntries(Object.entries(policy.notices || {}).map(([k, v]) => [k, v ?? ""])) },
    join_requests: policy.join_requests ? { ...policy.join_requests, answer_keywords: lineList(policy.join_requests.answer_keywords) } : null,
    verification: policy.verification ? { ...policy.verification } : null,
    reports: policy.reports ? { ...policy.reports, keywords: lineList(policy.reports.keywords) } : null,
    blocklists: lineList(policy.blocklists),
    share_bans_to: policy.share_bans_to ?? "",
  };
}

function policyBody(d) {
  return {
    strike_window_days: d.strike_window_days,
    ladder: d.ladder.map((s) => ({ strikes: s.strikes, action: s.action, mute_seconds: s.action === "mute" || s.action === "ban" ? s.mute_seconds || null : null })),
    exempt_members: lines(d.exempt_members),
    notices: Object.fromEntries(Object.entries(d.notices).map(([k, v]) => [k, v.trim() ? v : null])),
    join_requests: d.join_requests && { mode: d.join_requests.mode, answer_keywords: lines(d.join_requests.answer_keywords) },
    verification: d.verification,
    reports: d.reports && { ...d.reports, keywords: lines(d.reports.keywords) },
    blocklists: lines(d.blocklists),
    share_bans_to: d.share_bans_to.trim() || null,
  };
}

function Policy({ group, write }) {
  const load = useLoad(() => api("moderation", `${groupPath(group)}/policy`), [group]);
  return html`<${Section} title=${t("mod.policy")} id="policy">
    <${Loaded} load=${load}>
      ${(policy) => html`<${PolicyForm} key=${policy.group_id} group=${group} policy=${policy} write=${write} onSaved=${load.reload} />`}
    <//>
  <//>`;
}

function PolicyForm({ group, policy, write, onSaved }) {
  const [d, setD] = useState(() => policyDraft(policy));
  const [errors, setErrors] = useState(null);
  const [saved, setSaved] = useState(false);
  const err = (path) => errorFor(errors, path);
  const set = (patch) => {
    setD({ ...d, ...patch });
    setSaved(false);
  };
  const nested = (key, patch) => set({ [key]: { ...d[key], ...patch } });
  const submit = async (event) => {
    event.preventDefault();
    setErrors(null);
    try {
      await api("moderation", `${groupPath(group)}/policy`, { method: "PUT", body: policyBody(d) });
      setSaved(true);
      onSaved();
    } catch (error) {
      setErrors(fieldErrors(error));
    }
  };
  const step = (i, patch) => set({ ladder: d.ladder.map((s, j) => (j === i ? { ...s, ...patch } : s)) });
  return html`<form onSubmit=${submit} novalidate>
    ${!write && html`<p class="hint">${t("common.read_only")}</p>`}
    <fieldset disabled=${!write} class="plain">
      <div class="form-grid">
        <${NumberInput} label=${t("policy.strike_window_days")} value=${d.strike_window_days} min="1" error=${err("strike_window_days")}
          onInput=${(v) => set({ strike_window_days: v })} />
        <${TextArea} label=${t("policy.exempt_members")} value=${d.exempt_members} hint=${t("param.list_hint")} error=${err("exempt_members")}
          onInput=${(v) => set({ exempt_members: v })} />
      </div>
      <fieldset>
        <legend>${t("policy.ladder")}</legend>
        ${d.ladder.length === 0 && html`<p class="hint">${t("policy.no_ladder")}</p>`}
        ${d.ladder.map((s, i) => html`<div class="form-grid ladder-step">
          <${NumberInput} label=${t("policy.strikes")} value=${s.strikes} min="1" error=${err(`ladder.${i}.strikes`)} onInput=${(v) => step(i, { strikes: v })} />
          <${Select} label=${t("col.action")} value=${s.action} options=${actionOptions()} onChange=${(v) => step(i, { action: v })} />
          ${(s.action === "mute" || s.action === "ban") && html`<${NumberInput} label=${t("rules.mute_seconds")} value=${s.mute_seconds} min="1"
            error=${err(`ladder.${i}.mute_seconds`)} onInput=${(v) => step(i, { mute_seconds: v })} />`}
          ${write && html`<button type="button" data-edit onClick=${() => set({ ladder: d.ladder.filter((_, j) => j !== i) })}>${t("common.remove")}</button>`}
        </div>`)}
        ${err("ladder") && html`<small class="field-error" role="alert">${err("ladder")}</small>`}
        ${write && html`<button type="button" data-edit onClick=${() => set({ ladder: [...d.ladder, { strikes: (d.ladder.at(-1)?.strikes || 0) + 1, action: "mute", mute_seconds: 600 }] })}>${t("policy.add_step")}</button>`}
      </fieldset>
      <fieldset>
        <legend>${t("policy.notices")}</legend>
        <p class="hint">${t("policy.notices_hint")}</p>
        <div class="form-grid">
          ${["warn", "mute", "kick", "ban", "verify"].map((k) => html`<${TextArea} label=${t(`notice.${k}`)} value=${d.notices[k]} rows="2" wide=${false}
            error=${err(`notices.${k}`)} onInput=${(v) => nested("notices", { [k]: v })} />`)}
        </div>
      </fieldset>
      <fieldset>
        <legend>${t("policy.join_requests")}</legend>
        <${Checkbox} label=${t("policy.join_requests_on")} checked=${Boolean(d.join_requests)}
          onChange=${(on) => set({ join_requests: on ? { mode: "manual", answer_keywords: "" } : null })} />
        ${d.join_requests && html`<div class="form-grid">
          <${Select} label=${t("policy.join_mode")} value=${d.join_requests.mode}
            options=${[["manual", t("policy.join_manual")], ["auto", t("policy.join_auto")]]} onChange=${(v) => nested("join_requests", { mode: v })} />
          <${TextArea} label=${t("policy.answer_keywords")} value=${d.join_requests.answer_keywords} hint=${t("param.list_hint")}
            error=${err("join_requests.answer_keywords")} onInput=${(v) => nested("join_requests", { answer_keywords: v })} />
        </div>`}
      </fieldset>
      <fieldset>
        <legend>${t("policy.verification")}</legend>
        <${Checkbox} label=${t("policy.verification_on")} checked=${Boolean(d.verification?.enabled)}
          onChange=${(on) => set({ verification: on ? { enabled: true, within_seconds: d.verification?.within_seconds || 300, on_fail: d.verification?.on_fail || "kick" } : null })} />
        ${d.verification?.enabled && html`<div class="form-grid">
          <${NumberInput} label=${t("policy.within_seconds")} value=${d.verification.within_seconds} min="10"
            error=${err("verification.within_seconds")} onInput=${(v) => nested("verification", { within_seconds: v })} />
          <${Select} label=${t("policy.on_fail")} value=${d.verification.on_fail}
            options=${actionOptions(["kick", "ban"])} onChange=${(v) => nested("verification", { on_fail: v })} />
        </div>`}
      </fieldset>
      <fieldset>
        <legend>${t("policy.reports")}</legend>
        <${Checkbox} label=${t("policy.reports_on")} checked=${Boolean(d.reports)}
          onChange=${(on) => set({ reports: on ? { keywords: "举报\n/report", threshold: 3, action: "delete", mute_seconds: null, delete_message: true } : null })} />
        ${d.reports && html`<div class="form-grid">
          <${TextArea} label=${t("policy.report_keywords")} value=${d.reports.keywords} hint=${t("param.list_hint")}
            error=${err("reports.keywords")} onInput=${(v) => nested("reports", { keywords: v })} />
          <${NumberInput} label=${t("policy.threshold")} value=${d.reports.threshold} min="1" error=${err("reports.threshold")}
            onInput=${(v) => nested("reports", { threshold: v })} />
          <${Select} label=${t("col.action")} value=${d.reports.action} options=${actionOptions()} onChange=${(v) => nested("reports", { action: v })} />
          <${Checkbox} label=${t("rules.delete_message")} checked=${d.reports.delete_message} onChange=${(v) => nested("reports", { delete_message: v })} />
        </div>`}
      </fieldset>
      <fieldset>
        <legend>${t("policy.blocklists")}</legend>
        <div class="form-grid">
          <${TextArea} label=${t("policy.subscribed")} value=${d.blocklists} rows="2" hint=${t("param.list_hint")} error=${err("blocklists")}
            onInput=${(v) => set({ blocklists: v })} />
          <${TextInput} label=${t("policy.share_bans_to")} value=${d.share_bans_to} error=${err("share_bans_to")}
            onInput=${(v) => set({ share_bans_to: v })} />
        </div>
      </fieldset>
    </fieldset>
    ${errors && errors[""] && html`<${ErrorBox} text=${errors[""]} />`}
    ${write && html`<div class="form-actions">
      <button type="submit" class="primary" data-edit>${t("policy.save")}</button>
      ${saved && html`<span role="status" class="ok-text">${t("common.saved")}</span>`}
    </div>`}
  </form>`;
}

// --- cases -------------------------------------------------------------------------------

function Cases({ group, write, zone }) {
  const [filter, setFilter] = useState({ member_id: "", action: "" });
  const [applied, setApplied] = useState(filter);
  const [extra, setExtra] = useState({ cases: [], cursor: undefined });
  const [reversing, setReversing] = useState(null);
  const [manual, setManual] = useState(false);
  const base = groupPath(group);
  const load = useLoad(async () => {
    setExtra({ cases: [], cursor: undefined });
    return api("moderation", `${base}/cases`, { query: { ...applied, limit: 50 } });
  }, [group, applied.member_id, applied.action]);
  const more = async () => {
    const cursor = extra.cursor ?? load.data.next_cursor;
    const page = await api("moderation", `${base}/cases`, { query: { ...applied, limit: 50, cursor } });
    setExtra({ cases: [...extra.cases, ...page.cases], cursor: page.next_cursor });
  };
  const columns = [
    { key: "created_at", label: t("col.time"), render: (c) => fmtTime(c.created_at, zone) },
    { key: "member_id", label: t("col.member") },
    { key: "action", label: t("col.action"), render: (c) => (c.action ? t(`action.${c.action}`) : "—") },
    {
      key: "rule_names",
      label: t("col.why"),
      value: (c) => c.rule_names.join(", "),
      render: (c) => html`${c.rule_names.join(", ") || (c.by ? t("cases.manual_by", { by: c.by }) : c.reporters?.length ? t("cases.reported", { n: c.reporters.length }) : "—")}
        ${c.shadow && html` <${Badge} kind="warn">${t("mode.shadow")}<//>`}`,
    },
    {
      key: "enforcement",
      label: t("col.enforcement"),
      value: (c) => c.enforcement?.outcome ?? "",
      render: (c) => html`${outcomeBadge(c.enforcement?.outcome)}${c.enforcement?.detail && html`<small class="detail">${c.enforcement.detail}</small>`}`,
    },
    {
      key: "reversed",
      label: t("col.status"),
      render: (c) => (c.reversed
        ? html`<${Badge} kind="plain">${t("cases.reversed")}<//><small class="detail">${[c.reversed_by, c.reversal_reason].filter(Boolean).join(" · ")}</small>`
        : t("cases.standing")),
    },
  ];
  if (write) {
    columns.push({
      key: "reverse",
      label: t("col.actions"),
      sortable: false,
      render: (c) => !c.reversed && !c.shadow && html`<button type="button" data-edit data-case-id=${c.id}
        aria-label=${t("cases.reverse_named", { member: c.member_id })} onClick=${() => setReversing(c)}>${t("cases.reverse")}</button>`,
    });
  }
  const search = (event) => {
    event.preventDefault();
    setApplied({ ...filter });
  };
  return html`<${Section} title=${t("mod.cases")} id="cases"
    actions=${write && html`<button type="button" data-edit onClick=${() => setManual(!manual)} aria-expanded=${manual}>${t("cases.manual")}</button>`}>
    ${manual && html`<${ManualAction} group=${group} onDone=${() => { setManual(false); load.reload(); }} />`}
    ${reversing && html`<${Reverse} group=${group} item=${reversing} onDone=${() => { setReversing(null); load.reload(); }} onCancel=${() => setReversing(null)} />`}
    <form class="toolbar" onSubmit=${search} role="search">
      <${TextInput} label=${t("col.member")} value=${filter.member_id} onInput=${(v) => setFilter({ ...filter, member_id: v })} />
      <${Select} label=${t("col.action")} value=${filter.action} onChange=${(v) => setFilter({ ...filter, action: v })}
        options=${[["", t("common.any")], ...actionOptions(MANUAL_ACTIONS.concat(["flag"]))]} />
      <button type="submit">${t("common.filter")}</button>
    </form>
    <${Loaded} load=${load} isEmpty=${(d) => !d.cases.length} empty=${t("cases.empty")}>
      ${(d) => html`<${Table} caption=${t("mod.cases")} rows=${[...d.cases, ...extra.cases]} columns=${columns} rowKey=${(c) => c.id} />
        ${(extra.cursor === undefined ? d.next_cursor : extra.cursor) && html`<button type="button" onClick=${more}>${t("common.more")}</button>`}`}
    <//>
  <//>`;
}

function Reverse({ group, item, onDone, onCancel }) {
  const [reason, setReason] = useState("");
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    try {
      await api("moderation", `${groupPath(group)}/cases/${encodeURIComponent(item.id)}/reverse`, { method: "POST", body: { reason: reason.trim() || null } });
      onDone();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<form class="editor" id="reverse-form" onSubmit=${submit} aria-labelledby="reverse-title">
    <h3 id="reverse-title">${t("cases.reverse_title", { action: item.action ? t(`action.${item.action}`) : "—", member: item.member_id })}</h3>
    <${TextInput} label=${t("cases.reason")} value=${reason} wide onInput=${setReason} />
    ${error && html`<${ErrorBox} error=${error} />`}
    <div class="form-actions">
      <button type="submit" class="primary" data-edit>${t("cases.confirm_reverse")}</button>
      <button type="button" onClick=${onCancel}>${t("common.cancel")}</button>
    </div>
  </form>`;
}

function ManualAction({ group, onDone }) {
  const [d, setD] = useState({ member_id: "", action: "warn", message_id: "", duration_seconds: null, reason: "" });
  const [errors, setErrors] = useState(null);
  const err = (path) => errorFor(errors, path);
  const submit = async (event) => {
    event.preventDefault();
    const local = {};
    if (!d.member_id.trim()) local.member_id = t("form.required");
    if (d.action === "mute" && !d.duration_seconds) local.duration_seconds = t("form.required");
    if (d.action === "delete" && !d.message_id.trim()) local.message_id = t("form.required");
    if (Object.keys(local).length) {
      setErrors(local);
      return;
    }
    const body = { member_id: d.member_id.trim(), action: d.action, message_id: d.message_id.trim() || null, duration_seconds: d.duration_seconds || null };
    if (d.reason.trim()) body.reason = d.reason.trim();
    try {
      await api("moderation", `${groupPath(group)}/actions`, { method: "POST", body });
      onDone();
    } catch (error) {
      setErrors(fieldErrors(error));
    }
  };
  return html`<form class="editor" id="manual-form" onSubmit=${submit} aria-labelledby="manual-title" novalidate>
    <h3 id="manual-title">${t("cases.manual")}</h3>
    <div class="form-grid">
      <${TextInput} label=${t("col.member")} value=${d.member_id} required error=${err("member_id")} onInput=${(v) => setD({ ...d, member_id: v })} />
      <${Select} label=${t("col.action")} value=${d.action} options=${actionOptions(MANUAL_ACTIONS)} onChange=${(v) => setD({ ...d, action: v })} />
      <${TextInput} label=${t("cases.message_id")} value=${d.message_id} error=${err("message_id")} onInput=${(v) => setD({ ...d, message_id: v })} />
      <${NumberInput} label=${t("cases.duration")} value=${d.duration_seconds} min="1" error=${err("duration_seconds")} onInput=${(v) => setD({ ...d, duration_seconds: v })} />
      <${TextInput} label=${t("cases.reason")} value=${d.reason} wide error=${err("reason")} onInput=${(v) => setD({ ...d, reason: v })} />
    </div>
    ${errors && errors[""] && html`<${ErrorBox} text=${errors[""]} />`}
    <div class="form-actions"><button type="submit" class="primary" data-edit>${t("cases.act")}</button></div>
  </form>`;
}

// --- join requests, reports, blocklists -------------------------------------------------------

function JoinRequests({ group, write, zone }) {
  const [status, setStatus] = useState("pending");
  const [problem, setProblem] = useState(null);
  const load = useLoad(() => api("moderation", `${groupPath(group)}/join-requests`, { query: { status, limit: 100 } }), [group, status]);
  const decide = async (item, verdict) => {
    setProblem(null);
    try {
      await api("moderation", `${groupPath(group)}/join-requests/${encodeURIComponent(item.id)}/${verdict}`, { method: "POST" });
      load.reload();
    } catch (error) {
      setProblem(error);
    }
  };
  const columns = [
    { key: "created_at", label: t("col.time"), render: (r) => fmtTime(r.created_at, zone) },
    { key: "member_id", label: t("col.member"), render: (r) => r.display_name || r.member_id },
    { key: "answer", label: t("join.answer") },
    { key: "status", label: t("col.status"), render: (r) => t(`join.${r.status}`) },
    { key: "decided_by", label: t("join.decided_by"), render: (r) => r.decided_by || "—" },
  ];
  if (write && status === "pending") {
    columns.push({
      key: "decide",
      label: t("col.actions"),
      sortable: false,
      render: (r) => html`<div class="row-actions">
        <button type="button" data-edit onClick=${() => decide(r, "approve")}>${t("join.approve")}</button>
        <button type="button" class="danger" data-edit onClick=${() => decide(r, "decline")}>${t("join.decline")}</button>
      </div>`,
    });
  }
  return html`<${Section} title=${t("mod.join-requests")} id="join-requests"
    actions=${html`<${Select} label=${t("col.status")} value=${status} onChange=${setStatus}
      options=${["pending", "approved", "declined"].map((s) => [s, t(`join.${s}`)])} />`}>
    ${problem && html`<${ErrorBox} error=${problem} />`}
    <${Loaded} load=${load} isEmpty=${(d) => !d.join_requests.length} empty=${t("join.empty")}>
      ${(d) => html`<${Table} caption=${t("mod.join-requests")} rows=${d.join_requests} columns=${columns} rowKey=${(r) => r.id} />`}
    <//>
  <//>`;
}

function Reports({ group, zone }) {
  const [status, setStatus] = useState("open");
  const load = useLoad(() => api("moderation", `${groupPath(group)}/reports`, { query: { status, limit: 100 } }), [group, status]);
  return html`<${Section} title=${t("mod.reports")} id="reports"
    actions=${html`<${Select} label=${t("col.status")} value=${status} onChange=${setStatus}
      options=${["open", "actioned"].map((s) => [s, t(`report.${s}`)])} />`}>
    <${Loaded} load=${load} isEmpty=${(d) => !d.reports.length} empty=${t("report.empty")}>
      ${(d) => html`<${Table} caption=${t("mod.reports")} rows=${d.reports} rowKey=${(r) => r.id} columns=${[
        { key: "created_at", label: t("col.time"), render: (r) => fmtTime(r.created_at, zone) },
        { key: "member_id", label: t("report.author") },
        { key: "message_id", label: t("cases.message_id") },
        { key: "reporters", label: t("report.reporters"), num: true, value: (r) => r.reporters.length, render: (r) => r.reporters.length },
        { key: "status", label: t("col.status"), render: (r) => t(`report.${r.status}`) },
        { key: "case_id", label: t("report.case"), render: (r) => r.case_id || "—" },
      ]} />`}
    <//>
  <//>`;
}

function Blocklists({ write, zone }) {
  if (!allGroups()) {
    return html`<${Section} title=${t("mod.blocklists")} id="blocklists"><p class="hint">${t("block.all_groups_only")}</p><//>`;
  }
  return html`<${SharedBlocklists} write=${write} zone=${zone} />`;
}

function SharedBlocklists({ write, zone }) {
  const [selected, setSelected] = useState(null);
  const [name, setName] = useState("");
  const [errors, setErrors] = useState(null);
  const load = useLoad(() => api("moderation", "/v1/blocklists", { query: { limit: 200 } }), []);
  const create = async (event) => {
    event.preventDefault();
    setErrors(null);
    try {
      await api("moderation", "/v1/blocklists", { method: "POST", body: { name: name.trim() } });
      setName("");
      load.reload();
    } catch (error) {
      setErrors(fieldErrors(error));
    }
  };
  return html`<${Section} title=${t("mod.blocklists")} id="blocklists">
    ${write && html`<form class="toolbar" onSubmit=${create}>
      <${TextInput} label=${t("block.new_name")} value=${name} error=${errorFor(errors, "name") || (errors && errors[""])} onInput=${setName} />
      <button type="submit" data-edit>${t("block.create")}</button>
    </form>`}
    <${Loaded} load=${load} isEmpty=${(d) => !d.blocklists.length} empty=${t("block.empty")}>
      ${(d) => html`<${Table} caption=${t("mod.blocklists")} rows=${d.blocklists} rowKey=${(b) => b.name} columns=${[
        { key: "name", label: t("col.name") },
        { key: "created_by", label: t("block.created_by") },
        { key: "created_at", label: t("col.time"), render: (b) => fmtTime(b.created_at, zone) },
        { key: "open", label: t("col.actions"), sortable: false, render: (b) => html`<button type="button" onClick=${() => setSelected(b.name)}
            aria-pressed=${selected === b.name}>${t("block.entries")}</button>` },
      ]} />`}
    <//>
    ${selected && html`<${Entries} key=${selected} name=${selected} write=${write} zone=${zone} />`}
  <//>`;
}

function Entries({ name, write, zone }) {
  const [d, setD] = useState({ member_id: "", reason: "" });
  const [errors, setErrors] = useState(null);
  const base = `/v1/blocklists/${encodeURIComponent(name)}/entries`;
  const load = useLoad(() => api("moderation", base, { query: { limit: 500 } }), [name]);
  const add = async (event) => {
    event.preventDefault();
    setErrors(null);
    try {
      await api("moderation", base, { method: "POST", body: { member_id: d.member_id.trim(), reason: d.reason.trim() } });
      setD({ member_id: "", reason: "" });
      load.reload();
    } catch (error) {
      setErrors(fieldErrors(error));
    }
  };
  const remove = async (entry) => {
    try {
      await api("moderation", `${base}/${encodeURIComponent(entry.member_id)}`, { method: "DELETE" });
      load.reload();
    } catch (error) {
      setErrors(fieldErrors(error));
    }
  };
  const columns = [
    { key: "member_id", label: t("col.member") },
    { key: "reason", label: t("cases.reason") },
    { key: "added_by", label: t("block.created_by") },
    { key: "created_at", label: t("col.time"), render: (e) => fmtTime(e.created_at, zone) },
  ];
  if (write) {
    columns.push({ key: "remove", label: t("col.actions"), sortable: false, render: (e) => html`<button type="button" class="danger" data-edit
      onClick=${() => remove(e)}>${t("common.remove")}</button>` });
  }
  return html`<div class="entries">
    <h3>${t("block.entries_of", { name })}</h3>
    ${write && html`<form class="toolbar" onSubmit=${add}>
      <${TextInput} label=${t("col.member")} value=${d.member_id} error=${errorFor(errors, "member_id")} onInput=${(v) => setD({ ...d, member_id: v })} />
      <${TextInput} label=${t("cases.reason")} value=${d.reason} error=${errorFor(errors, "reason")} onInput=${(v) => setD({ ...d, reason: v })} />
      <button type="submit" data-edit>${t("block.add")}</button>
    </form>`}
    ${errors && errors[""] && html`<${ErrorBox} text=${errors[""]} />`}
    <${Loaded} load=${load} isEmpty=${(x) => !x.entries.length} empty=${t("block.no_entries")}>
      ${(x) => html`<${Table} caption=${t("block.entries_of", { name })} rows=${x.entries} columns=${columns} rowKey=${(e) => e.member_id} />`}
    <//>
  </div>`;
}
