// The console's shell: configuration, login state, hash routing, header and navigation.
import { html, render, useEffect, useState } from "./lib.js";
import { initLocale, onLocaleChange, otherLocale, setLocale, t } from "./i18n.js";
import { access, session, setConfig, whenUnauthorized } from "./api.js";
import { LoginPage } from "./pages/login.js";
import { OverviewPage } from "./pages/overview.js";
import { GroupPage } from "./pages/group.js";
import { ModerationPage } from "./pages/moderation.js";
import { CampaignsPage, CampaignPage } from "./pages/campaigns.js";
import { DeliveriesPage } from "./pages/deliveries.js";
import { href, parseRoute } from "./routes.js";

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return hash;
}

const TABS = ["analytics", "moderation", "campaigns", "deliveries"];

function GroupTabs({ route }) {
  return html`<nav class="tabs" aria-label=${t("nav.group_sections")}>
    ${TABS.map(
      (tab) => html`<a href=${href.group(route.group, tab)} aria-current=${route.tab === tab ? "page" : undefined}>${t(`tab.${tab}`)}</a>`,
    )}
  </nav>`;
}

function Header({ route, who, onLogout }) {
  return html`<header class="top">
    <a class="skip" href="#main">${t("nav.skip")}</a>
    <a class="brand" href=${who ? href.overview() : "#/login"}>qunyun 群运 <span>${t("app.console")}</span></a>
    ${who && html`<nav class="main-nav" aria-label=${t("nav.main")}>
      <a href=${href.overview()} aria-current=${route.page === "overview" ? "page" : undefined}>${t("nav.overview")}</a>
    </nav>`}
    <div class="top-right">
      <button type="button" class="link" lang=${otherLocale()} onClick=${() => setLocale(otherLocale())}>
        ${t("nav.switch_locale")}
      </button>
      ${who && html`<span class="who" title=${t("login.scopes", { scopes: who.scopes.join(", ") })}>
          ${who.name}${who.scopes.includes("write") ? "" : ` · ${t("login.read_only")}`}
        </span>
        <button type="button" class="link" onClick=${onLogout}>${t("nav.logout")}</button>`}
    </div>
  </header>`;
}

function GroupShell({ route }) {
  const allowed = access(route.group);
  let body;
  if (!allowed) body = html`<div class="state error" role="alert"><p>${t("error.no_group_access", { group: route.group })}</p></div>`;
  // Keyed by group (and campaign): another group's page starts with fresh state.
  else if (route.tab === "moderation") body = html`<${ModerationPage} key=${route.group} group=${route.group} />`;
  else if (route.tab === "campaigns" && route.id) body = html`<${CampaignPage} key=${`${route.group}/${route.id}`} group=${route.group} id=${route.id} />`;
  else if (route.tab === "campaigns") body = html`<${CampaignsPage} key=${route.group} group=${route.group} />`;
  else if (route.tab === "deliveries") body = html`<${DeliveriesPage} key=${route.group} group=${route.group} />`;
  else body = html`<${GroupPage} key=${route.group} group=${route.group} />`;
  return html`<div class="group-shell">
    <div class="group-title">
      <a href=${href.overview()}>${t("nav.overview")}</a> <span aria-hidden="true">›</span>
      <h1>${route.group}</h1>
    </div>
    <${GroupTabs} route=${route} />
    ${body}
  </div>`;
}

function App() {
  const hash = useHash();
  const [, setLocaleTick] = useState(0);
  const [who, setWho] = useState(session.who());
  const [notice, setNotice] = useState(null);
  useEffect(() => onLocaleChange(() => setLocaleTick((n) => n + 1)), []);
  useEffect(() => {
    whenUnauthorized(() => {
      session.end();
      setWho(null);
      setNotice("login.expired");
      location.hash = "#/login";
    });
  }, []);
  const route = who ? parseRoute(hash) : { page: "login" };
  useEffect(() => {
    document.title = `${route.page === "group" ? `${route.group} · ` : ""}qunyun 群运 · ${t("app.console")}`;
  });
  const logout = () => {
    session.end();
    setWho(null);
    setNotice(null);
    location.hash = "#/login";
  };
  const loggedIn = (info) => {
    setWho(info);
    setNotice(null);
    if (!location.hash || location.hash === "#/login") location.hash = href.overview();
  };
  let page;
  if (route.page === "login") page = html`<${LoginPage} onLogin=${loggedIn} notice=${notice} />`;
  else if (route.page === "group") page = html`<${GroupShell} route=${route} />`;
  else page = html`<${OverviewPage} />`;
  return html`<${Header} route=${route} who=${who} onLogout=${logout} />
    <main id="main" tabindex="-1">${page}</main>`;
}

async function start() {
  const root = document.getElementById("app");
  try {
    const answer = await fetch("./config.json", { cache: "no-store" });
    const config = await answer.json();
    setConfig(config);
    await initLocale(config.locale);
  } catch {
    root.textContent = "qunyun console: /config.json could not be read.";
    return;
  }
  root.textContent = "";
  render(html`<${App} />`, root);
}

start();
