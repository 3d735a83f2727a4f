// Deliveries: what did not reach the platform (failed, forbidden, no route) with the
// platform's detail and a retry; and posting a message to the group.
import { html, useState } from "../lib.js";
import { t } from "../i18n.js";
import { all, api, canWrite, groupPath } from "../api.js";
import { ErrorBox, Loaded, Section, Select, Table, TextArea, TextInput, errorFor, fieldErrors, fmtTime, outcomeBadge, useLoad } from "../ui.js";
import { useZone } from "../zone.js";

const PROBLEMS = ["failed", "forbidden", "no_route"];
const OUTCOMES = ["delivered", "recorded", "unsupported", "forbidden", "expired", "failed", "no_route"];

/** Where a delivery came from: moderation, a campaign, or a message posted here. */
function whence(topic) {
  for (const origin of ["moderation", "campaigns", "delivery"]) if (topic.startsWith(origin)) return t(`topic.${origin}`);
  return topic;
}

async function loadDeliveries(base, view) {
  if (view === "problems") {
    const lists = await Promise.all(PROBLEMS.map((outcome) => all("delivery", `${base}/deliveries`, "deliveries", { query: { outcome, limit: 200 }, max: 200 })));
    return lists.flat().sort((a, b) => b.updated_at.localeCompare(a.updated_at));
  }
  const page = await api("delivery", `${base}/deliveries`, { query: { outcome: view === "all" ? "" : view, limit: 200 } });
  return page.deliveries;
}

export function DeliveriesPage({ group }) {
  const zone = useZone(group);
  const [view, setView] = useState("problems");
  const [retried, setRetried] = useState({});
  const [problem, setProblem] = useState(null);
  const base = groupPath(group);
  const load = useLoad(() => loadDeliveries(base, view), [base, view]);
  if (!zone) return html`<p class="state loading" role="status">${t("state.loading")}</p>`;
  const write = canWrite(group);
  const retry = async (delivery) => {
    setProblem(null);
    try {
      await api("delivery", `${base}/deliveries/${encodeURIComponent(delivery.id)}/retry`, { method: "POST" });
      setRetried({ ...retried, [delivery.id]: true });
      setTimeout(load.reload, 1500);
    } catch (error) {
      setProblem(error);
    }
  };
  const columns = [
    { key: "updated_at", label: t("col.time"), render: (d) => fmtTime(d.updated_at, zone) },
    { key: "operation", label: t("delivery.operation"), render: (d) => t(`op.${d.operation}`) },
    { key: "outcome", label: t("delivery.outcome"), render: (d) => html`<span data-outcome=${d.outcome}>${outcomeBadge(d.outcome)}</span>` },
    { key: "detail", label: t("delivery.detail"), render: (d) => html`<span class="detail-text">${d.detail || "—"}</span>` },
    { key: "attempts", label: t("delivery.attempts"), num: true },
    { key: "source", label: t("delivery.source"), render: (d) => [d.source, d.platform].filter(Boolean).join(" · ") || "—" },
    { key: "ref_topic", label: t("delivery.from"), render: (d) => whence(d.ref_topic) },
  ];
  if (write) {
    columns.push({
      key: "retry",
      label: t("col.actions"),
      sortable: false,
      render: (d) => PROBLEMS.includes(d.outcome) && (retried[d.id]
        ? html`<span role="status">${t("delivery.requeued")}</span>`
        : html`<button type="button" data-edit data-delivery-id=${d.id} onClick=${() => retry(d)}
            aria-label=${t("delivery.retry_named", { operation: t(`op.${d.operation}`) })}>${t("delivery.retry")}</button>`),
    });
  }
  return html`<div class="page deliveries">
    <p class="zone">${t("group.timezone", { zone })}</p>
    ${write && html`<${PostMessage} group=${group} onPosted=${() => setTimeout(load.reload, 1500)} />`}
    <${Section} title=${t("delivery.title")} id="deliveries"
      actions=${html`<${Select} label=${t("delivery.show")} value=${view} onChange=${setView}
        options=${[["problems", t("delivery.problems")], ...OUTCOMES.map((o) => [o, t(`outcome.${o}`)]), ["all", t("delivery.all")]]} />
        <button type="button" onClick=${load.reload}>${t("common.refresh")}</button>`}>
      <p class="hint">${t("delivery.intro")}</p>
      ${problem && html`<${ErrorBox} error=${problem} />`}
      <${Loaded} load=${load} isEmpty=${(rows) => !rows.length} empty=${view === "problems" ? t("delivery.no_problems") : t("delivery.empty")}>
        ${(rows) => html`<${Table} caption=${t("delivery.title")} rows=${rows} columns=${columns} rowKey=${(d) => d.id} />`}
      <//>
    <//>
  </div>`;
}

function PostMessage({ group, onPosted }) {
  const [d, setD] = useState({ text: "", reply_to: "", source: "" });
  const [errors, setErrors] = useState(null);
  const [posted, setPosted] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    setPosted(null);
    if (!d.text.trim()) {
      setErrors({ text: t("form.required") });
      return;
    }
    setErrors(null);
    try {
      const answer = await api("delivery", `${groupPath(group)}/messages`, {
        method: "POST",
        body: { text: d.text, reply_to: d.reply_to.trim() || null, source: d.source.trim() || null },
      });
      setPosted(answer.id);
      setD({ ...d, text: "" });
      onPosted();
    } catch (error) {
      setErrors(fieldErrors(error));
    }
  };
  return html`<${Section} title=${t("post.title")} id="post">
    <form class="form-grid" onSubmit=${submit} novalidate>
      <${TextArea} label=${t("post.text")} value=${d.text} error=${errorFor(errors, "text")} onInput=${(v) => setD({ ...d, text: v })} />
      <${TextInput} label=${t("post.reply_to")} value=${d.reply_to} error=${errorFor(errors, "reply_to")} onInput=${(v) => setD({ ...d, reply_to: v })} />
      <${TextInput} label=${t("post.source")} value=${d.source} hint=${t("post.source_hint")} error=${errorFor(errors, "source")} onInput=${(v) => setD({ ...d, source: v })} />
      ${errors && errors[""] && html`<${ErrorBox} text=${errors[""]} />`}
      <div class="form-actions">
        <button type="submit" class="primary" data-edit>${t("post.send")}</button>
        ${posted && html`<span role="status" class="ok-text">${t("post.queued")}</span>`}
      </div>
    </form>
  <//>`;
}
