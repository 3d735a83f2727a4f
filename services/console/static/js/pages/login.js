// Login: the operator pastes an API token; the console checks it and keeps it for this tab.
import { html, useState } from "../lib.js";
import { t } from "../i18n.js";
import { session, whoami } from "../api.js";
import { errorText } from "../ui.js";

export function LoginPage({ onLogin, notice }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) {
      setError(t("login.empty"));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const who = await whoami(value);
      session.start(value, who);
      setToken("");
      onLogin(who);
    } catch (failure) {
      setError(failure.status === 401 ? t("login.wrong_token") : errorText(failure));
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="login">
    <h1>${t("login.title")}</h1>
    <p>${t("login.intro")}</p>
    ${notice && html`<p class="state warn" role="status">${t(notice)}</p>`}
    <form onSubmit=${submit} class="login-form" aria-describedby="login-hint">
      <label for="token">${t("login.token")}</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false"
        value=${token} onInput=${(e) => setToken(e.currentTarget.value)}
        aria-invalid=${error ? "true" : undefined} aria-describedby=${error ? "login-error" : "login-hint"} />
      ${error && html`<p id="login-error" class="field-error" role="alert">${error}</p>`}
      <button type="submit" class="primary" disabled=${busy}>${busy ? t("state.checking") : t("login.submit")}</button>
    </form>
    <p id="login-hint" class="hint">${t("login.hint")}</p>
  </div>`;
}
