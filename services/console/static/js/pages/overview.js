// Overview: every group the token can read, with members, DAU/WAU/MAU and the last 7 days.
import { html, useState } from "../lib.js";
import { t } from "../i18n.js";
import { all, api } from "../api.js";
import { Loaded, Section, Table, number, percent, useLoad } from "../ui.js";
import { href } from "../routes.js";

async function loadOverview() {
  const first = await api("metrics", "/v1/overview", { query: { limit: 1000 } });
  let groups = first.groups;
  if (first.next_cursor) {
    groups = groups.concat(await all("metrics", "/v1/overview", "groups", { query: { cursor: first.next_cursor, limit: 1000 } }));
  }
  return { date: first.date, groups };
}

export function OverviewPage() {
  const load = useLoad(loadOverview, []);
  const [search, setSearch] = useState("");
  const columns = [
    { key: "group_id", label: t("col.group"), render: (g) => html`<a href=${href.group(g.group_id)}>${g.group_id}</a>` },
    { key: "members", label: t("col.members"), num: true, render: (g) => number(g.members) },
    { key: "dau", label: "DAU", num: true, render: (g) => number(g.dau) },
    { key: "wau", label: "WAU", num: true, render: (g) => number(g.wau) },
    { key: "mau", label: "MAU", num: true, render: (g) => number(g.mau) },
    {
      key: "stickiness",
      label: t("col.stickiness"),
      num: true,
      value: (g) => (g.mau ? g.dau / g.mau : 0),
      render: (g) => percent(g.mau ? g.dau / g.mau : null),
    },
    { key: "messages_7d", label: t("col.messages_7d"), num: true, render: (g) => number(g.messages_7d) },
    { key: "joins_7d", label: t("col.joins_7d"), num: true, render: (g) => number(g.joins_7d) },
    { key: "leaves_7d", label: t("col.leaves_7d"), num: true, render: (g) => number(g.leaves_7d) },
  ];
  return html`<div class="page overview">
    <h1>${t("overview.title")}</h1>
    <${Loaded} load=${load} isEmpty=${(d) => !d.groups.length} empty=${t("overview.empty")}>
      ${(data) => {
        const needle = search.trim().toLowerCase();
        const rows = data.groups.filter((g) => !needle || g.group_id.toLowerCase().includes(needle));
        const total = (key) => data.groups.reduce((sum, g) => sum + g[key], 0);
        return html`
          <div class="kpis" role="list">
            <div class="kpi" role="listitem"><span>${t("overview.groups")}</span><strong>${number(data.groups.length)}</strong></div>
            <div class="kpi" role="listitem"><span>${t("col.members")}</span><strong>${number(total("members"))}</strong></div>
            <div class="kpi" role="listitem"><span>DAU</span><strong>${number(total("dau"))}</strong></div>
            <div class="kpi" role="listitem"><span>${t("col.messages_7d")}</span><strong>${number(total("messages_7d"))}</strong></div>
          </div>
          <${Section} title=${t("overview.groups_on", { date: data.date })} id="groups">
            <div class="toolbar">
              <label for="group-search">${t("overview.search")}</label>
              <input id="group-search" type="search" value=${search} placeholder=${t("overview.search_placeholder")}
                onInput=${(e) => setSearch(e.currentTarget.value)} />
            </div>
            <${Table} caption=${t("overview.title")} columns=${columns} rows=${rows} rowKey=${(g) => g.group_id}
              initialSort=${{ key: "members", desc: true }} empty=${t("overview.no_match")} />
          <//>`;
      }}
    <//>
  </div>`;
}
