// tokengate console: an admin's view of the admin API, in the browser.
//
// Everything shown comes from the API served beside this page, under api/
// (relative, so the console works wherever tokengate_admin is mounted). The
// page is built with DOM calls only, never from HTML strings, so nothing the
// API returns can run as script. The admin's token lives in sessionStorage
// (this tab only) and travels only in the Authorization header; it is never
// put in a URL or a cookie, and is removed on sign-out.

import { $, el, svgEl } from "./dom.js";

const TOKEN_KEY = "tokengate.console.token";
// The account last chosen on the Account tab: the tab opens on it again,
// in this browser tab, until sign-out.
const ACCOUNT_KEY = "tokengate.console.account";
const USERS_PAGE = 100;
const AUDIT_PAGE = 25;

const enc = encodeURIComponent;

let token = sessionStorage.getItem(TOKEN_KEY);

const state = {
  me: null,          // the signed-in admin (api/whoami)
  accounts: [],      // accounts the admin sees
  policies: new Map(), // policy id → policy, for names
  names: new Map(),  // user id → promise of a display name
  userNames: new Map(), // user id → promise of its name ("" when unreadable)
};

// ---- DOM helpers ----------------------------------------------------------

// hidden text for screen readers, e.g. which user a "Delete" button is for.
const srOnly = (text) => el("span", { class: "visually-hidden", text });

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const countFormat = new Intl.NumberFormat();

function timeEl(iso) {
  return el("time", { datetime: iso, title: iso, text: dateFormat.format(new Date(iso)) });
}

function setCurrent(link, current) {
  if (current) link.setAttribute("aria-current", "page");
  else link.removeAttribute("aria-current");
}

// ---- messages ---------------------------------------------------------------

function showError(region, text) {
  region.textContent = text;
}

function clearError(region) {
  region.textContent = "";
}

function say(text) {
  $("status").textContent = text;
}

function messageOf(err) {
  if (err instanceof ApiError) return err.message;
  return "Something went wrong in the console: " + (err && err.message ? err.message : String(err));
}

// report shows an error, unless it already ended the session.
function report(err, region = $("alert"), prefix = "") {
  if (err && err.handled) return;
  showError(region, prefix + messageOf(err));
}

// ---- the API ----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// api calls the admin API under api/ with a bearer token and returns the
// decoded answer (null for 204). Refusals become ApiError with the API's
// own code and message.
async function api(method, path, body, bearer = token) {
  const headers = { Accept: "application/json" };
  if (bearer) headers.Authorization = "Bearer " + bearer;
  const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch("api" + path, init);
  } catch (_) {
    throw new ApiError(0, "network_error", "The gateway could not be reached. Check the connection and try again.");
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (_) {
    data = null;
  }
  if (!res.ok) {
    const e = data && data.error;
    if (e && typeof e.message === "string") throw new ApiError(res.status, e.code, e.message);
    throw new ApiError(res.status, "http_" + res.status, `The gateway answered ${res.status} ${res.statusText}.`);
  }
  return data;
}

// call is api for a signed-in admin: a 401 means the token no longer works
// (revoked, expired, user deleted), so the session ends.
async function call(method, path, body) {
  try {
    return await api(method, path, body);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && token) {
      signOut(`Your session has ended: ${err.message}. Sign in again.`);
      err.handled = true;
    }
    throw err;
  }
}

const orgPath = (rest = "") => `/orgs/${enc(state.me.org)}${rest}`;

// ---- labels -----------------------------------------------------------------

const ROLE_LABELS = { viewer: "Viewer", editor: "Editor", admin: "Admin", policy: "Policy based" };
const ROLE_HINTS = {
  viewer: "Viewer: reads only (GET, HEAD, OPTIONS).",
  editor: "Editor: any method.",
  admin: "Admin: any method, and manages users and tokens.",
  policy: "Policy based: what the chosen policies allow, and nothing else.",
};
const ACTION_LABELS = {
  "org.create": "Organization created",
  "account.create": "Account created",
  "account.delete": "Account deleted",
  "policy.create": "Policy created",
  "policy.update": "Policy changed",
  "policy.delete": "Policy deleted",
  "user.create": "User created",
  "user.update": "User changed",
  "user.delete": "User deleted",
  "token.create": "Token created",
  "token.revoke": "Token revoked",
  "token.expiring": "Token expiring",
  "webhook.create": "Webhook created",
  "webhook.update": "Webhook changed",
  "webhook.delete": "Webhook deleted",
};
const TYPE_LABELS = { ui: "UI user", programmatic: "programmatic", operator: "operator" };

function accountLabel(id) {
  const a = state.accounts.find((x) => x.id === id);
  return a ? `${a.name} (${id})` : id;
}

function policyLabel(id) {
  const p = state.policies.get(id);
  return p ? `${p.name} (${id})` : id;
}

// named shows a name with its ID beneath, or the ID alone.
function named(name, id) {
  return el("span", { class: "named" },
    name ? el("span", { class: "block", text: name }) : null,
    el("span", { class: "block hint mono nowrap", text: id }));
}

function roleCell(u) {
  const label = ROLE_LABELS[u.role] || u.role;
  if (u.role !== "policy") return el("td", { text: label });
  return el("td", {}, label + ": ", ...(u.policies || []).map((id) => {
    const p = state.policies.get(id);
    return named(p && p.name, id);
  }));
}

function accountsCell(u) {
  const ids = u.level === "account" ? [u.account] : u.accounts || [];
  if (ids.length === 0) return el("td", { text: "None (organization-wide routes only)" });
  return el("td", {}, ...ids.map((id) => {
    const a = state.accounts.find((x) => x.id === id);
    return named(a && a.name, id);
  }));
}

// rateLabel says a rate_limit in words: "100 requests per minute", "5
// requests per 90 seconds". The API writes windows in their largest whole
// unit ("2m", never "120s").
const WINDOW_UNITS = { s: ["second", "seconds"], m: ["minute", "minutes"], h: ["hour", "hours"] };

function rateLabel(limit) {
  const requests = `${limit.requests} ${limit.requests === 1 ? "request" : "requests"}`;
  const m = /^([0-9]+)([smh])$/.exec(limit.window);
  if (!m) return `${requests} per ${limit.window}`;
  const [one, many] = WINDOW_UNITS[m[2]];
  return `${requests} per ${m[1] === "1" ? one : `${m[1]} ${many}`}`;
}

// actorName resolves who made something to a name, asking the API once per
// user; callers that may not read that user see its ID.
function actorName(actor) {
  if (!actor) return Promise.resolve("unknown");
  if (actor.type === "operator") return Promise.resolve("Operator (Caddy admin endpoint)");
  if (state.me && actor.id === state.me.id) return Promise.resolve(`${state.me.name} (you)`);
  if (!state.names.has(actor.id)) {
    const kind = TYPE_LABELS[actor.type] || actor.type;
    state.names.set(actor.id, api("GET", orgPath(`/users/${enc(actor.id)}`)).then(
      (u) => `${u.name} (${kind})`,
      () => `${actor.id} (${kind})`,
    ));
  }
  return state.names.get(actor.id);
}

// ---- dialogs ----------------------------------------------------------------

// Where focus goes back to when a dialog closes: the control that opened
// it, or a heading when that control is gone.
const returnFocus = new WeakMap();

function openDialog(dialog, focusTarget, returnTo, fallback) {
  returnFocus.set(dialog, { returnTo: returnTo || document.activeElement, fallback });
  dialog.showModal();
  (focusTarget || dialog.querySelector("input, select, textarea, button")).focus();
}

function restoreFocus(dialog) {
  const back = returnFocus.get(dialog);
  returnFocus.delete(dialog);
  if (!back) return;
  const { returnTo, fallback } = back;
  if (returnTo && returnTo.isConnected && !returnTo.closest("[hidden]") && !returnTo.disabled) {
    returnTo.focus();
  } else if (fallback && fallback.isConnected) {
    fallback.focus();
  }
}

// closeQuietly closes a dialog without moving focus back (another dialog
// takes over).
function closeQuietly(dialog) {
  returnFocus.delete(dialog);
  if (dialog.open) dialog.close();
}

for (const dialog of document.querySelectorAll("dialog")) {
  dialog.addEventListener("close", () => restoreFocus(dialog));
}

// confirmAction asks before something that cannot be undone.
let confirmResolve = null;

function confirmAction({ title, message, yes }, opener, fallback) {
  $("confirm-title").textContent = title;
  $("confirm-message").textContent = message;
  $("confirm-yes").textContent = yes;
  return new Promise((resolve) => {
    confirmResolve = resolve;
    openDialog($("confirm-dialog"), $("confirm-no"), opener, fallback);
  });
}

function finishConfirm(answer) {
  const resolve = confirmResolve;
  confirmResolve = null;
  if ($("confirm-dialog").open) $("confirm-dialog").close();
  if (resolve) resolve(answer);
}

$("confirm-yes").addEventListener("click", () => finishConfirm(true));
$("confirm-no").addEventListener("click", () => finishConfirm(false));
$("confirm-dialog").addEventListener("close", () => finishConfirm(false));

// ---- the token, shown once ------------------------------------------------

function showToken({ secret, title, context }, returnTo, fallback) {
  $("token-title").textContent = title;
  $("token-context").textContent = context;
  $("new-token").value = secret;
  $("copy-status").textContent = "";
  openDialog($("token-dialog"), $("new-token"), returnTo, fallback);
}

// The secret leaves the page when the dialog closes, however it closes
// (Escape included).
function forgetToken() {
  $("new-token").value = "";
  $("copy-status").textContent = "";
}

$("token-dialog").addEventListener("cancel", forgetToken); // Escape, before it closes
$("token-dialog").addEventListener("close", forgetToken);

$("token-done").addEventListener("click", () => {
  forgetToken();
  $("token-dialog").close();
});

// copyField copies a field's value to the clipboard, or, where the browser
// refuses, selects it for the admin to copy; status says which.
async function copyField(field, status, noun) {
  try {
    if (!navigator.clipboard) throw new Error("no clipboard");
    await navigator.clipboard.writeText(field.value);
    status.textContent = "Copied to the clipboard.";
  } catch (_) {
    field.focus();
    field.select();
    status.textContent = `The browser did not allow copying. The ${noun} is selected: press Ctrl+C (⌘C on a Mac) to copy it.`;
  }
}

$("copy-token").addEventListener("click", () => copyField($("new-token"), $("copy-status"), "token"));

// ---- signing in and out ---------------------------------------------------

const VIEWS = ["loading", "signin", "settings", "policies", "audit", "webhooks", "usage"];

function showView(name) {
  for (const v of VIEWS) $("view-" + v).hidden = v !== name;
}

function showSignin() {
  $("main-nav").hidden = true;
  $("session").hidden = true;
  showView("signin");
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearError($("alert"));
  const input = $("signin-token");
  const candidate = input.value.trim();
  input.value = "";
  if (!candidate) {
    showError($("alert"), "Enter your personal access token.");
    input.focus();
    return;
  }
  const button = $("signin-submit");
  button.disabled = true;
  try {
    const me = await api("GET", "/whoami", undefined, candidate);
    token = candidate;
    sessionStorage.setItem(TOKEN_KEY, token);
    await startSession(me);
    say(`Signed in as ${me.name}.`);
  } catch (err) {
    showError($("alert"), "Sign-in refused: " + messageOf(err));
    input.focus();
  } finally {
    button.disabled = false;
  }
});

$("sign-out").addEventListener("click", () => signOut());

async function startSession(me) {
  state.me = me;
  state.names.clear();
  state.userNames.clear();
  try {
    state.accounts = (await call("GET", orgPath("/accounts"))).accounts;
  } catch (err) {
    state.accounts = [];
    report(err);
    if (err.handled) return;
  }
  $("session-user").textContent = `${me.name} · ${ROLE_LABELS[me.role] || me.role}, ` +
    (me.level === "organization" ? `organization ${me.org}` : `account ${accountLabel(me.account)}`);
  // Webhooks belong to the whole organization: its organization-level
  // admins manage them.
  $("nav-webhooks-item").hidden = me.level !== "organization";
  $("main-nav").hidden = false;
  $("session").hidden = false;
  if (!location.hash || location.hash === "#") {
    location.hash = "#/settings"; // routes on hashchange
  } else {
    route();
  }
}

function signOut(message) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ACCOUNT_KEY);
  state.me = null;
  state.accounts = [];
  state.policies.clear();
  state.names.clear();
  state.userNames.clear();
  for (const dialog of document.querySelectorAll("dialog")) closeQuietly(dialog);
  $("new-token").value = "";
  $("users-body").replaceChildren();
  $("audit-body").replaceChildren();
  $("tokens-body").replaceChildren();
  $("webhooks-body").replaceChildren();
  $("deliveries-body").replaceChildren();
  $("policies-body").replaceChildren();
  $("statements-body").replaceChildren();
  clearUsage();
  $("new-secret").value = "";
  $("session-user").textContent = "";
  history.replaceState(null, "", location.pathname + location.search);
  showSignin();
  if (message) {
    showError($("alert"), message);
  } else {
    clearError($("alert"));
    say("Signed out. The token was removed from this browser.");
  }
  $("signin-title").focus();
}

// ---- routing ----------------------------------------------------------------
//
//   #/settings/organization[/programmatic-users]
//   #/settings/account/<act>[/programmatic-users]
//   #/policies
//   #/audit
//   #/webhooks
//   #/usage/<user>

window.addEventListener("hashchange", () => {
  clearError($("alert"));
  say("");
  route();
});

function route() {
  if (!token || !state.me) {
    showSignin();
    return;
  }
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [top, scope, ...rest] = parts;
  setCurrent($("nav-settings"), top === "settings" || top === "usage");
  setCurrent($("nav-audit"), top === "audit");
  setCurrent($("nav-policies"), top === "policies");
  if (top === "policies") {
    showView("policies");
    $("policies-scope").textContent = state.me.level === "account"
      ? `The policies of account ${accountLabel(state.me.account)}, and the organization-wide ones you may grant.`
      : `Every policy of organization ${state.me.org}.`;
    $("policies-title").focus();
    renderPolicies();
    return;
  }
  setCurrent($("nav-webhooks"), top === "webhooks");
  if (top === "webhooks") {
    if (state.me.level !== "organization") {
      location.replace("#/settings");
      return;
    }
    showView("webhooks");
    $("webhooks-title").focus();
    loadWebhooks();
    return;
  }
  if (top === "usage" && scope) {
    showView("usage");
    $("usage-title").focus();
    openUsage(scope);
    return;
  }
  if (top === "audit") {
    showView("audit");
    $("audit-scope").textContent = state.me.level === "account"
      ? `Every change in account ${accountLabel(state.me.account)}, newest first.`
      : `Every change in organization ${state.me.org}, newest first.`;
    $("audit-title").focus();
    loadPolicies().then(fillAuditActors).then(() => loadAudit(true), (err) => report(err));
    return;
  }
  if (top !== "settings") {
    location.replace("#/settings");
    return;
  }
  showSettings(scope, rest);
}

function showSettings(scope, rest) {
  const me = state.me;
  const orgWide = me.level === "organization";
  showView("settings");
  $("tab-organization-item").hidden = !orgWide;
  if ((scope !== "organization" && scope !== "account") || (scope === "organization" && !orgWide)) {
    location.replace(orgWide ? "#/settings/organization" : "#/settings/account");
    return;
  }
  setCurrent($("tab-organization"), scope === "organization");
  setCurrent($("tab-account"), scope === "account");
  const picker = $("account-picker");
  picker.hidden = scope !== "account";

  let section;
  let target;
  if (scope === "organization") {
    section = rest[0];
    target = { level: "organization" };
    $("menu-programmatic-users").href = "#/settings/organization/programmatic-users";
  } else {
    const account = rest[0];
    section = rest[1];
    const held = (id) => state.accounts.some((a) => a.id === id);
    const known = held(account);
    if (!known) {
      const remembered = sessionStorage.getItem(ACCOUNT_KEY);
      const first = orgWide
        ? (held(remembered) ? remembered : state.accounts[0] && state.accounts[0].id)
        : me.account;
      if (first && first !== account) {
        location.replace(`#/settings/account/${enc(first)}`);
        return;
      }
    } else {
      sessionStorage.setItem(ACCOUNT_KEY, account);
    }
    target = { level: "account", account };
    const select = $("account-select");
    select.replaceChildren(...state.accounts.map((a) => el("option", { value: a.id, text: accountLabel(a.id) })));
    select.value = account || "";
    $("menu-programmatic-users").href = `#/settings/account/${enc(account || "")}/programmatic-users`;
  }
  // Programmatic Users is the one section: open it rather than ask.
  if (section === undefined && (target.level === "organization" || target.account)) {
    location.replace($("menu-programmatic-users").getAttribute("href"));
    return;
  }
  setCurrent($("menu-programmatic-users"), section === "programmatic-users");

  if (section === "programmatic-users" && (target.level === "organization" || target.account)) {
    $("panel-intro").hidden = true;
    $("panel-users").hidden = false;
    $("users-scope").textContent = target.level === "organization"
      ? `Organization-level users of ${me.org}: they reach organization-wide resources and the accounts listed.`
      : `Account-level users of ${accountLabel(target.account)}: they reach this account only.`;
    $("users-caption").textContent = target.level === "organization"
      ? `Programmatic users of organization ${me.org}`
      : `Programmatic users of account ${accountLabel(target.account)}`;
    $("users-title").focus();
    loadUsers(target, true);
    return;
  }
  $("panel-users").hidden = true;
  $("panel-intro").hidden = false;
  if (target.level === "organization") {
    $("intro-title").textContent = `Organization ${me.org}`;
    $("intro-text").textContent = "Choose a section. Programmatic Users: users that reach the API only, with tokens of their own.";
  } else if (target.account) {
    $("intro-title").textContent = `Account ${accountLabel(target.account)}`;
    $("intro-text").textContent = "Choose a section. Programmatic Users: users of this account that reach the API only.";
  } else {
    $("intro-title").textContent = "No accounts";
    $("intro-text").textContent = "This organization has no accounts yet.";
  }
  $("intro-title").focus();
}

$("account-select").addEventListener("change", (ev) => {
  const account = enc(ev.target.value);
  $("menu-programmatic-users").href = `#/settings/account/${account}/programmatic-users`;
  const section = location.hash.endsWith("/programmatic-users") ? "/programmatic-users" : "";
  location.hash = `#/settings/account/${account}${section}`;
});

// A field marked invalid is unmarked as soon as it is changed.
document.addEventListener("input", (ev) => {
  if (ev.target instanceof Element) ev.target.removeAttribute("aria-invalid");
});

// ---- programmatic users ---------------------------------------------------

// usage: user id → its requests in the last 7 days, read once per draw of
// the list (null when it could not be read: no counts). dormantDays: the
// organization's dormant_after, read with it (the default, 30, when unset).
const users = { target: null, cursor: "", generation: 0, usage: null, dormantDays: 30 };

async function loadUsers(target, reset) {
  if (reset) {
    users.generation++;
    users.target = target;
    users.cursor = "";
    $("users-body").replaceChildren();
    $("users-empty").hidden = true;
  }
  const generation = users.generation;
  const stale = () => generation !== users.generation || !state.me;
  $("panel-users").setAttribute("aria-busy", "true");
  $("users-loading").hidden = false;
  $("users-more").hidden = true;
  try {
    if (reset) {
      const [, usage] = await Promise.all([loadPolicies(), loadOrgUsage()]);
      if (stale()) return;
      users.usage = usage;
    }
    let added = 0;
    let firstNew = null;
    do {
      const q = new URLSearchParams({ type: "programmatic", limit: String(USERS_PAGE) });
      if (target.account) q.set("account", target.account);
      if (users.cursor) q.set("cursor", users.cursor);
      const page = await call("GET", orgPath(`/users?${q}`));
      if (stale()) return;
      // The account filter also matches organization-level users that
      // reach the account; each tab shows its own level.
      const mine = page.users.filter((u) => u.level === target.level && (!target.account || u.account === target.account));
      const rows = await Promise.all(mine.map(userRow));
      if (stale()) return;
      $("users-body").append(...rows);
      firstNew = firstNew || rows[0] || null;
      added += rows.length;
      users.cursor = page.next_cursor || "";
    } while (added === 0 && users.cursor);
    $("users-more").hidden = !users.cursor;
    $("users-empty").hidden = $("users-body").rows.length > 0;
    applyView();
    if (!reset && firstNew && document.activeElement === document.body) firstNew.querySelector("th").focus();
  } catch (err) {
    if (!stale()) report(err);
  } finally {
    if (!stale()) {
      $("users-loading").hidden = true;
      $("panel-users").removeAttribute("aria-busy");
    }
  }
}

// loadOrgUsage reads every user's requests of the last 7 days (the API's
// default window), in one call, as a map of user id → {requests, refused}.
async function loadOrgUsage() {
  try {
    const org = await call("GET", orgPath());
    const days = /^([1-9][0-9]*)d$/.exec(org.dormant_after || "");
    users.dormantDays = days ? Number(days[1]) : 30;
    const { users: list } = await call("GET", orgPath("/usage"));
    return new Map(list.map((u) => [u.user_id, u]));
  } catch (err) {
    if (err.handled) throw err;
    return null; // the column says Unknown
  }
}

// isDormant: as the gateway reports user.dormant — an enabled user whose
// last activity (its tokens' last use, else its creation) is older than
// the organization's dormant_after. Unknown tokens: no badge.
function isDormant(u, tokens, lastUsed) {
  if (u.disabled || tokens === null || !u.created_at) return false;
  const last = Math.max(new Date(u.created_at).getTime(), lastUsed ? new Date(lastUsed).getTime() : 0);
  return Date.now() - last > users.dormantDays * 24 * 3600 * 1000;
}

function requestsCell(used) {
  if (!users.usage) return el("td", { class: "num requests", text: "Unknown" });
  if (!used) return el("td", { class: "num requests", text: "0" });
  return el("td", { class: "num requests" }, el("span", { class: "block", text: countFormat.format(used.requests) }),
    used.refused ? el("span", { class: "block hint", text: `${countFormat.format(used.refused)} refused` }) : null);
}

async function loadPolicies() {
  try {
    const { policies } = await call("GET", orgPath("/policies"));
    state.policies = new Map(policies.map((p) => [p.id, p]));
  } catch (err) {
    if (err.handled) throw err;
    // Names are a nicety: the list shows policy IDs without them.
  }
}

async function userRow(u) {
  const [tokens, creator] = await Promise.all([
    call("GET", orgPath(`/users/${enc(u.id)}/tokens`)).then((r) => r.tokens, () => null),
    actorName(u.created_by),
  ]);
  let lastUsed = null;
  for (const t of tokens || []) {
    if (t.last_used_at && (!lastUsed || t.last_used_at > lastUsed)) lastUsed = t.last_used_at;
  }
  const tokensButton = el("button", { type: "button", class: "secondary small" }, "Tokens", srOnly(` of ${u.name}`));
  tokensButton.addEventListener("click", () => openTokens(u, tokensButton));
  const rateButton = el("button", { type: "button", class: "secondary small rate-button" }, "Rate limit", srOnly(` of ${u.name}`));
  rateButton.addEventListener("click", () => openRate(u, rateButton));
  const editButton = el("button", { type: "button", class: "secondary small edit-button" }, "Edit", srOnly(` ${u.name}`));
  editButton.addEventListener("click", () => openEdit(u, editButton));
  const deleteButton = el("button", { type: "button", class: "danger small" }, "Delete", srOnly(` ${u.name}`));
  deleteButton.addEventListener("click", () => deleteUser(u, deleteButton));
  const usageLink = el("a", { href: `#/usage/${enc(u.id)}`, class: "button secondary small usage-link" }, "Usage", srOnly(` of ${u.name}`));
  const used = users.usage ? users.usage.get(u.id) : null;
  const dormant = isDormant(u, tokens, lastUsed);
  const row = el("tr", {
    "data-user-id": u.id,
    "data-name": u.name.toLowerCase(),
    "data-search": [u.name, u.id, u.description || ""].join("\n").toLowerCase(),
    "data-role": u.role,
    "data-disabled": u.disabled ? "true" : "false",
    "data-created": u.created_at || "",
    "data-used": lastUsed || "",
    "data-requests": used ? String(used.requests) : "0",
    "data-dormant": dormant ? "true" : "false",
  },
    el("th", { scope: "row", tabindex: "-1" },
      el("span", { class: "user-name", text: u.name }),
      u.description ? el("span", { class: "hint block", text: u.description }) : null,
      el("span", { class: "hint block mono nowrap", text: u.id }),
      u.allowed_cidrs ? el("span", { class: "hint block", text: "Allowed networks: " + u.allowed_cidrs.join(", ") }) : null,
      u.rate_limit ? el("span", { class: "hint block rate-limit", text: "Rate limit: " + rateLabel(u.rate_limit) }) : null,
      u.disabled ? el("span", { class: "badge", text: "disabled" }) : null,
      dormant ? el("span", { class: "badge dormant", title: `No request in ${users.dormantDays} days`, text: "dormant" }) : null),
    el("td", { text: u.type === "programmatic" ? "Programmatic" : "UI" }),
    roleCell(u),
    accountsCell(u),
    el("td", {}, el("span", { class: "block", text: creator }), u.created_at ? el("span", { class: "block hint" }, timeEl(u.created_at)) : null),
    el("td", {}, lastUsed ? timeEl(lastUsed) : tokens ? "Never" : "Unknown"),
    requestsCell(used),
    el("td", { class: "row-actions" }, usageLink, editButton, tokensButton, rateButton, deleteButton));
  row.hidden = !matchesView(row);
  return row;
}

// ---- finding and ordering users -------------------------------------------

// The list's view: what is typed in Find, the role and state chosen, and
// the order. It applies to the users loaded (Load more brings the rest).
function matchesView(row) {
  const words = $("users-search").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const role = $("users-role").value;
  const wanted = $("users-state").value;
  return words.every((w) => row.dataset.search.includes(w)) &&
    (!role || row.dataset.role === role) &&
    (!wanted || (row.dataset.disabled === "true") === (wanted === "disabled"));
}

const ORDERS = {
  name: (a, b) => a.dataset.name.localeCompare(b.dataset.name) || a.dataset.userId.localeCompare(b.dataset.userId),
  newest: (a, b) => b.dataset.created.localeCompare(a.dataset.created),
  oldest: (a, b) => a.dataset.created.localeCompare(b.dataset.created),
  used: (a, b) => b.dataset.used.localeCompare(a.dataset.used) || ORDERS.name(a, b),
  requests: (a, b) => Number(b.dataset.requests) - Number(a.dataset.requests) || ORDERS.name(a, b),
};

// applyView shows the rows that match, in the order chosen, and says how
// many.
function applyView() {
  const body = $("users-body");
  const rows = [...body.rows];
  rows.sort(ORDERS[$("users-sort").value] || ORDERS.name);
  let shown = 0;
  for (const row of rows) {
    row.hidden = !matchesView(row);
    if (!row.hidden) shown++;
    body.append(row);
  }
  const filtered = $("users-search").value.trim() || $("users-role").value || $("users-state").value;
  const more = users.cursor ? " loaded; Load more for the rest" : "";
  $("users-count").textContent = rows.length === 0 ? "" : filtered
    ? `${shown} of ${rows.length} users${more} match.`
    : `${rows.length} users${more}.`;
}

for (const id of ["users-search", "users-role", "users-state", "users-sort"]) {
  $(id).addEventListener("input", applyView);
  $(id).addEventListener("change", applyView);
}
$("users-view").addEventListener("submit", (ev) => ev.preventDefault());

$("users-more").addEventListener("click", () => loadUsers(users.target, false));

async function deleteUser(u, opener) {
  const confirmed = await confirmAction({
    title: `Delete ${u.name}?`,
    message: `The programmatic user ${u.name} and all of its tokens are deleted: programs using them are refused from now on, on every gateway. This cannot be undone.`,
    yes: "Delete user",
  }, opener, $("users-title"));
  if (!confirmed) return;
  try {
    await call("DELETE", orgPath(`/users/${enc(u.id)}`));
    say(`Programmatic user ${u.name} deleted.`);
    $("users-title").focus();
    await loadUsers(users.target, true);
  } catch (err) {
    report(err, $("alert"), `Could not delete ${u.name}: `);
  }
}

// ---- adding a programmatic user -------------------------------------------

$("add-user").addEventListener("click", () => openAdd());

function checkbox(name, id, value, label) {
  const box = el("input", { type: "checkbox", id, name, value });
  return el("div", { class: "choice" }, box, el("label", { for: id, text: label }));
}

// The add dialog also edits: form.user is the user edited, null when
// adding one. Its level and account are the user's, or the list's.
const form = { user: null, level: "", account: "" };

async function openAdd() {
  const target = users.target;
  await openUserForm(null, target.level, target.account);
  openDialog($("add-dialog"), $("add-name"), $("add-user"), $("users-title"));
}

async function openEdit(u, opener) {
  await openUserForm(u, u.level, u.account);
  openDialog($("add-dialog"), $("add-name"), opener, $("users-title"));
}

// openUserForm fills the dialog in: empty to add a user at level (of
// account), or with u's fields to edit it.
async function openUserForm(u, level, account) {
  form.user = u;
  form.level = level;
  form.account = account || "";
  $("add-form").reset();
  clearError($("add-error"));
  for (const f of $("add-form").querySelectorAll("[aria-invalid]")) f.removeAttribute("aria-invalid");
  const orgLevel = level === "organization";
  const roles = orgLevel ? ["viewer", "editor", "admin"] : ["viewer", "editor", "admin", "policy"];
  $("add-role").replaceChildren(...roles.map((r) => el("option", { value: r, text: ROLE_LABELS[r] })));
  $("add-title").textContent = u ? `Edit ${u.name}` : "Add programmatic user";
  $("add-submit").textContent = u ? "Save changes" : "Create";
  const scope = orgLevel ? `an organization-level user of ${state.me.org}` : `an account-level user of ${accountLabel(account)}`;
  $("add-context").textContent = u ? `${u.name} (${u.id}) is ${scope}.` : `${scope[0].toUpperCase()}${scope.slice(1)}.`;
  $("add-accounts").hidden = !orgLevel;
  $("add-accounts-list").replaceChildren(...state.accounts.map((a) =>
    checkbox("accounts", `add-account-${a.id}`, a.id, accountLabel(a.id))));
  $("add-policies-list").replaceChildren();
  if (!orgLevel) {
    await loadPolicies();
    const usable = [...state.policies.values()].filter((p) => !p.account || p.account === account);
    $("add-policies-list").replaceChildren(...usable.map((p) =>
      checkbox("policies", `add-policy-${p.id}`, p.id,
        `${p.name} (${p.id}, ${p.account ? "this account" : "organization-wide"})`)));
    if (usable.length === 0) {
      $("add-policies-list").append(el("p", { class: "hint", text: "No policies apply to this account yet." }));
    }
  }
  $("add-disabled-field").hidden = !u;
  if (u) {
    $("add-name").value = u.name;
    $("add-description").value = u.description || "";
    $("add-role").value = u.role;
    for (const id of u.accounts || []) {
      const box = $(`add-account-${id}`);
      if (box) box.checked = true;
    }
    for (const id of u.policies || []) {
      const box = $(`add-policy-${id}`);
      if (box) box.checked = true;
    }
    $("add-cidrs").value = (u.allowed_cidrs || []).join(", ");
    $("add-rate-requests").value = u.rate_limit ? String(u.rate_limit.requests) : "";
    $("add-rate-window").value = u.rate_limit ? u.rate_limit.window : "1m";
    $("add-disabled").checked = !!u.disabled;
  }
  updateRole();
}

function updateRole() {
  const role = $("add-role").value;
  $("add-role-hint").textContent = ROLE_HINTS[role] || "";
  $("add-policies").hidden = form.level !== "account" || role !== "policy";
}

$("add-role").addEventListener("change", updateRole);
$("add-cancel").addEventListener("click", () => $("add-dialog").close());

const checked = (listId) => [...$(listId).querySelectorAll("input[type=checkbox]:checked")].map((b) => b.value);

$("add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const target = users.target;
  const editing = form.user;
  const errorRegion = $("add-error");
  clearError(errorRegion);
  const nameField = $("add-name");
  const cidrsField = $("add-cidrs");
  const rateFields = { requests: $("add-rate-requests"), window: $("add-rate-window") };
  for (const f of [nameField, cidrsField, rateFields.requests, rateFields.window]) f.removeAttribute("aria-invalid");
  const name = nameField.value.trim();
  if (!name) {
    nameField.setAttribute("aria-invalid", "true");
    showError(errorRegion, "Name is required.");
    nameField.focus();
    return;
  }
  const body = {
    name,
    description: $("add-description").value.trim(),
    role: $("add-role").value,
  };
  if (form.level === "organization") {
    body.accounts = checked("add-accounts-list");
  } else if (body.role === "policy") {
    body.policies = checked("add-policies-list");
    if (body.policies.length === 0) {
      showError(errorRegion, "A policy-based role needs at least one policy: choose the policies.");
      const first = $("add-policies-list").querySelector("input");
      (first || $("add-role")).focus();
      return;
    }
  }
  // Commas or spaces between networks; the API checks each one.
  body.allowed_cidrs = cidrsField.value.split(/[\s,]+/).filter(Boolean);
  const rate = readRateLimit(rateFields);
  if (rate.invalid) {
    flagInvalid(rate.invalid, errorRegion, rate.message);
    return;
  }
  body.rate_limit = rate.limit;
  const submit = $("add-submit");
  submit.disabled = true;
  try {
    if (editing) {
      await saveEdit(editing, body);
    } else {
      if (body.allowed_cidrs.length === 0) delete body.allowed_cidrs;
      if (!body.rate_limit) delete body.rate_limit;
      body.type = "programmatic";
      body.level = form.level;
      if (form.level === "account") body.account = form.account;
      const created = await call("POST", orgPath("/users"), body);
      closeQuietly($("add-dialog"));
      say(`Programmatic user ${created.user.name} created. Copy its token now.`);
      showToken({
        secret: created.token.secret,
        title: `Token of ${created.user.name}`,
        context: `The first token of the programmatic user ${created.user.name}.`,
      }, $("add-user"), $("users-title"));
      loadUsers(target, true);
    }
  } catch (err) {
    report(err, errorRegion, editing ? `Could not change ${editing.name}: ` : "Could not create the user: ");
    const rateField = rateFieldAtFault(err, rateFields);
    if (!err.handled && err.code === "invalid_request" && err.message.startsWith("allowed_cidrs")) {
      cidrsField.setAttribute("aria-invalid", "true");
      cidrsField.focus();
    } else if (rateField) {
      rateField.setAttribute("aria-invalid", "true");
      rateField.focus();
    } else if (!err.handled) {
      nameField.focus();
    }
  } finally {
    submit.disabled = false;
  }
});

const sameList = (a, b) => JSON.stringify(a || []) === JSON.stringify(b || []);

// saveEdit sends what changed in the form, and only that: a change is a
// grant the API judges field by field, and an admin may change a name
// without being allowed to grant the user's accounts again.
async function saveEdit(u, body) {
  const change = {};
  if (body.name !== u.name) change.name = body.name;
  if (body.description !== (u.description || "")) change.description = body.description;
  if (body.role !== u.role) change.role = body.role;
  if (body.accounts && !sameList(body.accounts, u.accounts)) change.accounts = body.accounts;
  if (body.role === "policy" && !sameList(body.policies, u.policies)) change.policies = body.policies;
  if (!sameList(body.allowed_cidrs, u.allowed_cidrs)) change.allowed_cidrs = body.allowed_cidrs;
  if (JSON.stringify(body.rate_limit) !== JSON.stringify(u.rate_limit || null)) change.rate_limit = body.rate_limit;
  const disabled = $("add-disabled").checked;
  if (disabled !== !!u.disabled) change.disabled = disabled;
  if (Object.keys(change).length === 0) {
    closeQuietly($("add-dialog"));
    say(`Nothing to change: ${u.name} is as it was.`);
  } else {
    const updated = await call("PATCH", orgPath(`/users/${enc(u.id)}`), change);
    closeQuietly($("add-dialog"));
    const what = "disabled" in change ? (disabled ? " and disabled: its tokens are refused" : " and enabled") : "";
    say(`${updated.name} changed${what}, from now on.`);
    u = updated;
  }
  // The row shows the user as stored; focus goes back to its Edit button.
  const old = [...$("users-body").rows].find((r) => r.dataset.userId === u.id);
  if (old && state.me) {
    const fresh = await userRow(u);
    old.replaceWith(fresh);
    fresh.querySelector(".edit-button").focus();
  } else {
    $("users-title").focus();
  }
}

// ---- rate limits ------------------------------------------------------------

// readRateLimit reads the Requests and Per window fields: { limit: null }
// when Requests is empty (no limit), { limit } otherwise, or { invalid,
// message } naming the field to correct. The API judges the numbers (1 to
// 1000000000 requests, a window from 1s to 24h) and says what is wrong.
function readRateLimit(fields) {
  const requests = fields.requests.value.trim();
  const window = fields.window.value.trim();
  if (requests === "") return { limit: null };
  if (!/^[0-9]{1,15}$/.test(requests)) {
    return { invalid: fields.requests, message: "Rate limit: Requests must be a whole number, such as 100." };
  }
  if (window === "") {
    return { invalid: fields.window, message: "Rate limit: give the window, such as 1m." };
  }
  return { limit: { requests: Number(requests), window } };
}

// rateFieldAtFault is the field an API refusal of a rate_limit is about,
// if it is about one.
function rateFieldAtFault(err, fields) {
  if (!err || err.handled || err.code !== "invalid_request" || !err.message.startsWith("rate_limit")) return null;
  return err.message.startsWith("rate_limit.window") ? fields.window : fields.requests;
}

function flagInvalid(field, region, message) {
  field.setAttribute("aria-invalid", "true");
  showError(region, message);
  field.focus();
}

// Changing a user's rate limit: it applies at once, on every gateway.

const rateEdit = { user: null };
const rateEditFields = () => ({ requests: $("rate-requests"), window: $("rate-window") });

function openRate(u, opener) {
  rateEdit.user = u;
  $("rate-form").reset();
  clearError($("rate-error"));
  const fields = rateEditFields();
  for (const f of [fields.requests, fields.window]) f.removeAttribute("aria-invalid");
  $("rate-title").textContent = `Rate limit of ${u.name}`;
  $("rate-context").textContent = u.rate_limit ? `Now: ${rateLabel(u.rate_limit)}.` : "Now: no limit.";
  fields.requests.value = u.rate_limit ? String(u.rate_limit.requests) : "";
  fields.window.value = u.rate_limit ? u.rate_limit.window : "1m";
  openDialog($("rate-dialog"), fields.requests, opener, $("users-title"));
}

$("rate-cancel").addEventListener("click", () => $("rate-dialog").close());
$("rate-dialog").addEventListener("close", () => {
  rateEdit.user = null;
});

$("rate-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const u = rateEdit.user;
  if (!u) return;
  const errorRegion = $("rate-error");
  clearError(errorRegion);
  const fields = rateEditFields();
  for (const f of [fields.requests, fields.window]) f.removeAttribute("aria-invalid");
  const rate = readRateLimit(fields);
  if (rate.invalid) {
    flagInvalid(rate.invalid, errorRegion, rate.message);
    return;
  }
  const submit = $("rate-submit");
  submit.disabled = true;
  try {
    const updated = await call("PATCH", orgPath(`/users/${enc(u.id)}`), { rate_limit: rate.limit });
    closeQuietly($("rate-dialog"));
    say(updated.rate_limit
      ? `Rate limit of ${updated.name}: ${rateLabel(updated.rate_limit)}, from now on.`
      : `${updated.name} has no rate limit now.`);
    // The row shows the new limit; focus goes back to its button.
    const fresh = await userRow(updated);
    const old = [...$("users-body").rows].find((r) => r.dataset.userId === u.id);
    if (old && state.me) {
      old.replaceWith(fresh);
      fresh.querySelector(".rate-button").focus();
    } else {
      $("users-title").focus();
    }
  } catch (err) {
    report(err, errorRegion, "Could not change the rate limit: ");
    const field = rateFieldAtFault(err, fields);
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    } else if (!err.handled) {
      fields.requests.focus();
    }
  } finally {
    submit.disabled = false;
  }
});

// ---- a user's tokens: rotate, revoke --------------------------------------

const tokens = { user: null, rotating: null, changed: false };

async function openTokens(u, opener) {
  tokens.user = u;
  tokens.rotating = null;
  tokens.changed = false;
  $("tokens-title").textContent = `Tokens of ${u.name}`;
  $("tokens-caption").textContent = `Tokens of ${u.name}`;
  $("tokens-body").replaceChildren();
  $("tokens-empty").hidden = true;
  $("rotate-form").hidden = true;
  $("new-token-form").hidden = true;
  clearError($("tokens-error"));
  openDialog($("tokens-dialog"), $("tokens-close"), opener, $("users-title"));
  await renderTokens();
  const first = $("tokens-body").querySelector("button");
  if (first && $("tokens-dialog").open) first.focus();
}

async function renderTokens() {
  const u = tokens.user;
  try {
    const list = (await call("GET", orgPath(`/users/${enc(u.id)}/tokens`))).tokens;
    if (tokens.user !== u) return;
    $("tokens-body").replaceChildren(...list.map(tokenRow));
    $("tokens-empty").hidden = list.length > 0;
  } catch (err) {
    report(err, $("tokens-error"));
  }
}

function tokenRow(t) {
  const label = `${t.name || "unnamed"} (${t.hint})`;
  const rotate = el("button", { type: "button", class: "secondary small" }, "Rotate", srOnly(` token ${label}`));
  rotate.addEventListener("click", () => startRotation(t));
  const revoke = el("button", { type: "button", class: "danger small" }, "Revoke", srOnly(` token ${label}`));
  revoke.addEventListener("click", () => revokeToken(t, revoke));
  return el("tr", { "data-token-id": t.id },
    el("th", { scope: "row", text: t.name || "unnamed" }),
    el("td", {}, el("code", { text: t.hint })),
    el("td", {}, timeEl(t.created_at)),
    el("td", {}, t.expires_at ? timeEl(t.expires_at) : "Never"),
    el("td", {}, t.last_used_at ? timeEl(t.last_used_at) : "Never"),
    el("td", { class: "row-actions" }, rotate, revoke));
}

// Expiry choices for a new token: expires_in as the API takes it.
const EXPIRIES = [["", "Never"], ["720h", "In 30 days"], ["2160h", "In 90 days"], ["8760h", "In 1 year"]];
for (const select of document.querySelectorAll("select.expiry")) {
  select.replaceChildren(...EXPIRIES.map(([value, text]) => el("option", { value, text })));
}

const expiryWords = (value) => (EXPIRIES.find(([v]) => v === value) || ["", "Never"])[1].toLowerCase();

$("new-token-open").addEventListener("click", () => {
  tokens.rotating = null;
  $("rotate-form").hidden = true;
  clearError($("tokens-error"));
  $("new-token-form").reset();
  $("new-token-form").hidden = false;
  $("new-token-name").focus();
});

$("new-token-cancel").addEventListener("click", () => {
  $("new-token-form").hidden = true;
  $("new-token-open").focus();
});

$("new-token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const u = tokens.user;
  const name = $("new-token-name").value.trim();
  const expiry = $("new-token-expiry").value;
  const body = {};
  if (name) body.name = name;
  if (expiry) body.expires_in = expiry;
  const submit = $("new-token-submit");
  submit.disabled = true;
  try {
    const created = await call("POST", orgPath(`/users/${enc(u.id)}/tokens`), body);
    tokens.changed = true;
    $("new-token-form").hidden = true;
    const expires = expiry ? `; it expires ${expiryWords(expiry)}` : "; it does not expire";
    say(`Token ${created.hint} of ${u.name} created${expires}. Copy it now.`);
    await renderTokens();
    showToken({
      secret: created.secret,
      title: `New token of ${u.name}`,
      context: `${name ? `${name}: a` : "A"}nother token of ${u.name}${expires}.`,
    }, $("new-token-open"), $("tokens-title"));
  } catch (err) {
    report(err, $("tokens-error"), "Could not create the token: ");
    if (!err.handled) $("new-token-name").focus();
  } finally {
    submit.disabled = false;
  }
});

function startRotation(t) {
  tokens.rotating = t;
  $("new-token-form").hidden = true;
  clearError($("tokens-error"));
  $("rotate-title").textContent = `Rotate token ${t.name || "unnamed"} (${t.hint})`;
  $("rotate-overlap").value = "";
  $("rotate-expiry").value = "";
  $("rotate-form").hidden = false;
  $("rotate-overlap").focus();
}

$("rotate-cancel").addEventListener("click", () => {
  $("rotate-form").hidden = true;
  tokens.rotating = null;
  $("tokens-title").focus();
});

$("rotate-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const t = tokens.rotating;
  const u = tokens.user;
  if (!t) return;
  const overlap = $("rotate-overlap").value;
  // The new token is named after the one it replaces, so the list tells
  // them apart.
  const base = (t.name || "token").replace(/, rotated$/, "");
  const body = { replaces: t.id, name: `${base}, rotated`.slice(0, 128) };
  if (overlap) body.overlap = overlap;
  const expiry = $("rotate-expiry").value;
  if (expiry) body.expires_in = expiry;
  const submit = $("rotate-submit");
  submit.disabled = true;
  try {
    const created = await call("POST", orgPath(`/users/${enc(u.id)}/tokens`), body);
    tokens.changed = true;
    tokens.rotating = null;
    $("rotate-form").hidden = true;
    const old = overlap === "1h" ? "keeps working for 1 hour" : overlap === "24h" ? "keeps working for 24 hours" : "has stopped working";
    say(`Token ${t.hint} of ${u.name} rotated; the old token ${old}.`);
    await renderTokens();
    showToken({
      secret: created.secret,
      title: `New token of ${u.name}`,
      context: `It replaces ${t.hint}, which ${old}.`,
    }, $("tokens-title"), $("tokens-title"));
  } catch (err) {
    report(err, $("tokens-error"), "Could not rotate the token: ");
  } finally {
    submit.disabled = false;
  }
});

async function revokeToken(t, opener) {
  const u = tokens.user;
  const confirmed = await confirmAction({
    title: `Revoke token ${t.hint}?`,
    message: `Programs using this token of ${u.name} are refused from now on, on every gateway. This cannot be undone.`,
    yes: "Revoke token",
  }, opener, $("tokens-title"));
  if (!confirmed) return;
  try {
    await call("DELETE", orgPath(`/users/${enc(u.id)}/tokens/${enc(t.id)}`));
    tokens.changed = true;
    say(`Token ${t.hint} of ${u.name} revoked.`);
    $("tokens-title").focus();
    await renderTokens();
  } catch (err) {
    report(err, $("tokens-error"), "Could not revoke the token: ");
  }
}

// Leaving the tokens dialog refreshes the list when tokens changed (last
// use is per token). It runs before the dialog closes, so the list is busy
// from the moment the dialog is gone.
function leaveTokens() {
  const changed = tokens.changed;
  tokens.user = null;
  tokens.changed = false;
  if (changed && users.target && state.me) loadUsers(users.target, true);
}

$("tokens-close").addEventListener("click", () => {
  leaveTokens();
  $("tokens-dialog").close();
});
$("tokens-dialog").addEventListener("cancel", leaveTokens);

// ---- policies ---------------------------------------------------------------

const policyEdit = { policy: null, rows: 0 };
const MAX_STATEMENTS = 100;
const MAX_ITEMS = 50;

async function renderPolicies() {
  $("policies-table").setAttribute("aria-busy", "true");
  try {
    const { policies } = await call("GET", orgPath("/policies"));
    state.policies = new Map(policies.map((p) => [p.id, p]));
    const list = [...policies].sort((a, b) => a.name.localeCompare(b.name));
    $("policies-body").replaceChildren(...list.map(policyRow));
    $("policies-empty").hidden = list.length > 0;
  } catch (err) {
    report(err);
  } finally {
    $("policies-table").removeAttribute("aria-busy");
  }
}

// mayChange: an account-level admin changes its own account's policies
// only; the organization-wide ones it may grant, not rewrite.
const mayChange = (p) => state.me.level === "organization" || p.account === state.me.account;

function policyRow(p) {
  const cells = [];
  if (mayChange(p)) {
    const edit = el("button", { type: "button", class: "secondary small" }, "Edit", srOnly(` policy ${p.name}`));
    edit.addEventListener("click", () => openPolicy(p, edit));
    const del = el("button", { type: "button", class: "danger small" }, "Delete", srOnly(` policy ${p.name}`));
    del.addEventListener("click", () => deletePolicy(p, del));
    cells.push(edit, del);
  }
  const summary = el("ul", { class: "statements" }, ...p.statements.map((st) =>
    el("li", {}, el("span", { class: st.effect === "deny" ? "badge" : "", text: st.effect === "deny" ? "Deny" : "Allow" }),
      " ", el("code", { text: st.methods.join(", ") }), " on ", el("code", { text: st.paths.join(", ") }))));
  return el("tr", { "data-policy-id": p.id },
    el("th", { scope: "row", tabindex: "-1" },
      el("span", { class: "block policy-name", text: p.name }),
      p.description ? el("span", { class: "hint block", text: p.description }) : null,
      el("span", { class: "hint block mono nowrap", text: p.id })),
    el("td", { text: p.account ? accountLabel(p.account) : "The whole organization" }),
    el("td", {}, summary),
    el("td", { class: "row-actions" }, ...cells));
}

$("add-policy").addEventListener("click", () => openPolicy(null, $("add-policy")));

function openPolicy(p, opener) {
  policyEdit.policy = p;
  $("policy-form").reset();
  clearError($("policy-error"));
  $("policy-title").textContent = p ? `Edit policy ${p.name}` : "Add policy";
  $("policy-submit").textContent = p ? "Save policy" : "Create policy";
  const scopes = state.me.level === "organization" ? [["", "The whole organization"]] : [];
  for (const a of state.accounts) {
    if (state.me.level === "organization" || a.id === state.me.account) scopes.push([a.id, accountLabel(a.id)]);
  }
  $("policy-account").replaceChildren(...scopes.map(([value, text]) => el("option", { value, text })));
  $("policy-account").disabled = !!p;
  $("statements-body").replaceChildren();
  if (p) {
    $("policy-name").value = p.name;
    $("policy-description").value = p.description || "";
    $("policy-account").value = p.account || "";
    for (const st of p.statements) addStatementRow(st);
  } else {
    addStatementRow({ effect: "allow", methods: ["GET"], paths: [] });
  }
  openDialog($("policy-dialog"), $("policy-name"), opener, $("policies-title"));
}

// A statement is a row: effect, methods, paths, and a button to remove it.
function addStatementRow(st) {
  const n = ++policyEdit.rows;
  const effect = el("select", { id: `stmt-effect-${n}`, class: "stmt-effect" },
    el("option", { value: "allow", text: "Allow" }), el("option", { value: "deny", text: "Deny" }));
  effect.value = st.effect;
  const methods = el("input", { id: `stmt-methods-${n}`, class: "stmt-methods mono", type: "text", autocomplete: "off",
    spellcheck: "false", "aria-describedby": "statements-hint", value: st.methods.join(", ") });
  const paths = el("input", { id: `stmt-paths-${n}`, class: "stmt-paths mono", type: "text", autocomplete: "off",
    spellcheck: "false", "aria-describedby": "statements-hint", value: st.paths.join(", ") });
  const remove = el("button", { type: "button", class: "secondary small stmt-remove" }, "Remove", el("span", { class: "visually-hidden stmt-which" }));
  const row = el("tr", {}, el("th", { scope: "row", class: "stmt-number" }),
    el("td", {}, effect), el("td", {}, methods), el("td", {}, paths), el("td", {}, remove));
  remove.addEventListener("click", () => {
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    numberStatements();
    (next ? next.querySelector(".stmt-remove") : $("add-statement")).focus();
  });
  $("statements-body").append(row);
  numberStatements();
  return row;
}

// numberStatements labels each row's fields with its number.
function numberStatements() {
  const rows = [...$("statements-body").rows];
  rows.forEach((row, i) => {
    const k = i + 1;
    row.querySelector(".stmt-number").textContent = String(k);
    row.querySelector(".stmt-effect").setAttribute("aria-label", `Statement ${k}: effect`);
    row.querySelector(".stmt-methods").setAttribute("aria-label", `Statement ${k}: methods`);
    row.querySelector(".stmt-paths").setAttribute("aria-label", `Statement ${k}: paths`);
    row.querySelector(".stmt-which").textContent = ` statement ${k}`;
    row.querySelector(".stmt-remove").disabled = rows.length === 1;
  });
  $("add-statement").disabled = rows.length >= MAX_STATEMENTS;
}

$("add-statement").addEventListener("click", () => {
  addStatementRow({ effect: "allow", methods: ["GET"], paths: [] }).querySelector(".stmt-paths").focus();
});
$("policy-cancel").addEventListener("click", () => $("policy-dialog").close());

const splitList = (v) => v.split(/[\s,]+/).filter(Boolean);

// pathProblem says what is wrong with a path pattern, as the gateway
// would refuse it, or "".
function pathProblem(p) {
  if (!p.startsWith("/")) return "must start with /";
  if (p.length > 1024) return "is longer than 1024 characters";
  if ((p.match(/\*/g) || []).length > 16) return "has more than 16 wildcards";
  const open = p.endsWith("**") || p.endsWith("/*");
  if (p.slice(0, p.endsWith("**") ? -2 : p.length).includes("**")) return `has "**" before its end`;
  if (p.length > 1 && p.endsWith("/") && !open) return "must not end with / (use /prefix/* for everything below)";
  const segments = p.slice(1).split("/");
  if (segments.slice(0, -1).includes("")) return "has an empty segment (//)";
  if (segments.some((seg) => seg === "." || seg === "..")) return `has a "." or ".." segment`;
  return "";
}

// readStatements reads the rows, or says which field is wrong.
function readStatements() {
  const statements = [];
  for (const [i, row] of [...$("statements-body").rows].entries()) {
    const k = i + 1;
    const methodsField = row.querySelector(".stmt-methods");
    const pathsField = row.querySelector(".stmt-paths");
    const methods = splitList(methodsField.value).map((m) => (m === "*" ? m : m.toUpperCase()));
    const paths = splitList(pathsField.value);
    if (methods.length === 0 || methods.length > MAX_ITEMS) {
      return { field: methodsField, message: `Statement ${k}: give 1 to ${MAX_ITEMS} methods, such as GET, or *.` };
    }
    const bad = methods.find((m) => m !== "*" && !/^[A-Z]{1,20}$/.test(m));
    if (bad) return { field: methodsField, message: `Statement ${k}: "${bad}" is not an HTTP method, such as GET, or *.` };
    if (paths.length === 0 || paths.length > MAX_ITEMS) {
      return { field: pathsField, message: `Statement ${k}: give 1 to ${MAX_ITEMS} paths, such as /api/**.` };
    }
    for (const p of paths) {
      const problem = pathProblem(p);
      if (problem) return { field: pathsField, message: `Statement ${k}: the path "${p}" ${problem}.` };
    }
    statements.push({ effect: row.querySelector(".stmt-effect").value, methods, paths });
  }
  return { statements };
}

// statementField is the field an API refusal names, such as
// statements[1].paths.
function statementField(err) {
  const m = /^statements\[(\d+)\]\.(effect|methods|paths)/.exec((err && err.message) || "");
  if (!m) return null;
  const row = $("statements-body").rows[Number(m[1])];
  return row ? row.querySelector(`.stmt-${m[2]}`) : null;
}

$("policy-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const p = policyEdit.policy;
  const errorRegion = $("policy-error");
  clearError(errorRegion);
  for (const f of $("policy-form").querySelectorAll("[aria-invalid]")) f.removeAttribute("aria-invalid");
  const nameField = $("policy-name");
  const name = nameField.value.trim();
  if (!name) {
    flagInvalid(nameField, errorRegion, "Name is required.");
    return;
  }
  const read = readStatements();
  if (read.field) {
    flagInvalid(read.field, errorRegion, read.message);
    return;
  }
  const body = { name, description: $("policy-description").value.trim(), statements: read.statements };
  const account = p ? p.account : $("policy-account").value;
  if (account) body.account = account;
  const submit = $("policy-submit");
  submit.disabled = true;
  try {
    const saved = p
      ? await call("PUT", orgPath(`/policies/${enc(p.id)}`), body)
      : await call("POST", orgPath("/policies"), body);
    closeQuietly($("policy-dialog"));
    say(p ? `Policy ${saved.name} saved: its users are judged by it from now on.` : `Policy ${saved.name} created.`);
    await renderPolicies();
    const row = [...$("policies-body").rows].find((r) => r.dataset.policyId === saved.id);
    (row ? row.querySelector("th") : $("policies-title")).focus();
  } catch (err) {
    report(err, errorRegion, p ? "Could not save the policy: " : "Could not create the policy: ");
    const field = statementField(err);
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    } else if (!err.handled) {
      nameField.focus();
    }
  } finally {
    submit.disabled = false;
  }
});

async function deletePolicy(p, opener) {
  const confirmed = await confirmAction({
    title: `Delete policy ${p.name}?`,
    message: `The policy ${p.name} is deleted. A policy that users hold cannot be: take it from them first.`,
    yes: "Delete policy",
  }, opener, $("policies-title"));
  if (!confirmed) return;
  try {
    await call("DELETE", orgPath(`/policies/${enc(p.id)}`));
    say(`Policy ${p.name} deleted.`);
    $("policies-title").focus();
    await renderPolicies();
  } catch (err) {
    report(err, $("alert"), `Could not delete ${p.name}: `);
    $("policies-title").focus();
  }
}

// ---- audit log --------------------------------------------------------------

const audit = { cursor: "", generation: 0, actorsFor: null };
const EXPORT_PAGE = 1000;

$("audit-action").append(...Object.entries(ACTION_LABELS).map(([value, text]) => el("option", { value, text: `${text} (${value})` })));

// fillAuditActors offers the organization's users (those the admin may
// read) as Who, by name, once per sign-in.
async function fillAuditActors() {
  if (audit.actorsFor === state.me) return;
  audit.actorsFor = state.me;
  const select = $("audit-actor");
  for (const o of [...select.options].slice(3)) o.remove();
  try {
    const q = new URLSearchParams({ limit: String(EXPORT_PAGE) });
    const { users: list } = await call("GET", orgPath(`/users?${q}`));
    list.sort((a, b) => a.name.localeCompare(b.name));
    select.append(...list.map((u) => el("option", { value: u.id, text: `${u.name} (${TYPE_LABELS[u.type] || u.type}, ${u.id})` })));
  } catch (err) {
    if (err.handled) throw err;
    // Who can still be Anyone, the operator or tokengate.
  }
}

// auditQuery is the filters as the API takes them. A time picked in the
// page is a local minute: From starts it, To ends it.
function auditQuery() {
  const q = new URLSearchParams();
  if ($("audit-actor").value) q.set("actor", $("audit-actor").value);
  if ($("audit-action").value) q.set("action", $("audit-action").value);
  const since = $("audit-since").value;
  const until = $("audit-until").value;
  if (since) q.set("since", new Date(since).toISOString());
  if (until) q.set("until", new Date(new Date(until).getTime() + 59999).toISOString());
  return q;
}

async function loadAudit(reset) {
  if (reset) {
    audit.generation++;
    audit.cursor = "";
    $("audit-body").replaceChildren();
    $("audit-empty").hidden = true;
  }
  const generation = audit.generation;
  $("audit-more").hidden = true;
  $("audit-table").setAttribute("aria-busy", "true");
  try {
    const q = auditQuery();
    q.set("limit", String(AUDIT_PAGE));
    if (audit.cursor) q.set("cursor", audit.cursor);
    const page = await call("GET", orgPath(`/audit?${q}`));
    if (generation !== audit.generation) return;
    const rows = await Promise.all(page.events.map(eventRow));
    if (generation !== audit.generation) return;
    $("audit-body").append(...rows);
    audit.cursor = page.next_cursor || "";
    $("audit-more").hidden = !audit.cursor;
    $("audit-empty").hidden = $("audit-body").rows.length > 0;
    // "Load more" disappears at the end: keep focus on the page.
    if (!reset && !audit.cursor && rows[0]) rows[0].querySelector("th").focus();
  } catch (err) {
    if (generation === audit.generation) report(err);
  } finally {
    if (generation === audit.generation) $("audit-table").removeAttribute("aria-busy");
  }
}

$("audit-filters").addEventListener("submit", (ev) => {
  ev.preventDefault();
  loadAudit(true);
});

// Export: every event the filters match, one JSON object a line, as the
// API gives them, saved by the browser.
$("audit-export").addEventListener("click", async () => {
  const button = $("audit-export");
  const status = $("audit-export-status");
  button.disabled = true;
  status.textContent = "Exporting…";
  try {
    const lines = [];
    let cursor = "";
    do {
      const q = auditQuery();
      q.set("limit", String(EXPORT_PAGE));
      if (cursor) q.set("cursor", cursor);
      const page = await call("GET", orgPath(`/audit?${q}`));
      for (const e of page.events) lines.push(JSON.stringify(e));
      cursor = page.next_cursor || "";
    } while (cursor);
    const blob = new Blob(lines.map((l) => l + "\n"), { type: "application/x-ndjson" });
    const url = URL.createObjectURL(blob);
    const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, "");
    const link = el("a", { href: url, download: `tokengate-audit-${state.me.org}-${stamp}.jsonl`, hidden: "" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    status.textContent = `Exported ${lines.length} ${lines.length === 1 ? "event" : "events"}.`;
  } catch (err) {
    status.textContent = "";
    report(err, $("alert"), "Could not export the audit log: ");
  } finally {
    button.disabled = false;
  }
});

// userName resolves a user's ID to its name, once per user; one the admin
// may not read stays an ID.
function userName(id) {
  if (!state.userNames.has(id)) {
    state.userNames.set(id, api("GET", orgPath(`/users/${enc(id)}`)).then((u) => u.name, () => ""));
  }
  return state.userNames.get(id);
}

// targetCell names what an event is about beside its ID: the user, the
// account, the policy, or the token and its user.
async function targetCell(e) {
  const id = e.target || "";
  let name = "";
  if (id.startsWith("u-")) name = await userName(id);
  else if (id.startsWith("act-")) name = (state.accounts.find((a) => a.id === id) || {}).name || "";
  else if (id.startsWith("pol-")) name = (state.policies.get(id) || {}).name || "";
  else if (id.startsWith("tok-") && e.user) {
    const owner = await userName(e.user);
    name = `Token of ${owner || e.user}`;
  }
  return el("td", {}, name ? el("span", { class: "block", text: name }) : null, el("code", { class: name ? "hint" : "", text: id }));
}

async function eventRow(e) {
  const [actor, target] = await Promise.all([actorName(e.actor), targetCell(e)]);
  return el("tr", {},
    el("th", { scope: "row", tabindex: "-1" }, timeEl(e.time)),
    el("td", { text: actor }),
    el("td", {}, ACTION_LABELS[e.action] || e.action, " ", el("code", { class: "hint", text: e.action })),
    target,
    el("td", { text: e.account ? accountLabel(e.account) : "—" }));
}

$("audit-more").addEventListener("click", () => loadAudit(false));

// ---- webhooks -----------------------------------------------------------------

const DELIVERIES_PAGE = 25;
const DELIVERY_LABELS = { delivered: "Delivered", retrying: "Failed; will be retried", failed: "Failed; given up" };
const webhooks = { generation: 0 };

async function loadWebhooks() {
  const generation = ++webhooks.generation;
  $("webhooks-table").setAttribute("aria-busy", "true");
  try {
    const list = (await call("GET", orgPath("/webhooks"))).webhooks;
    if (generation !== webhooks.generation) return;
    $("webhooks-body").replaceChildren(...list.map(webhookRow));
    $("webhooks-empty").hidden = list.length > 0;
  } catch (err) {
    if (generation === webhooks.generation) report(err);
  } finally {
    if (generation === webhooks.generation) $("webhooks-table").removeAttribute("aria-busy");
  }
}

function eventsLabel(events) {
  if (events.length === 1 && events[0] === "*") return "All events";
  return events.join(", ");
}

function webhookRow(h) {
  const label = h.description || h.url;
  const deliveriesButton = el("button", { type: "button", class: "secondary small" }, "Deliveries", srOnly(` of ${label}`));
  deliveriesButton.addEventListener("click", () => openDeliveries(h, deliveriesButton));
  const toggle = el("button", { type: "button", class: "secondary small" }, h.disabled ? "Enable" : "Disable", srOnly(` ${label}`));
  toggle.addEventListener("click", () => toggleWebhook(h, toggle));
  const remove = el("button", { type: "button", class: "danger small" }, "Delete", srOnly(` ${label}`));
  remove.addEventListener("click", () => deleteWebhook(h, remove));
  return el("tr", { "data-webhook-id": h.id },
    el("th", { scope: "row", tabindex: "-1" },
      el("span", { class: "block mono webhook-url", text: h.url }),
      h.description ? el("span", { class: "hint block", text: h.description }) : null,
      el("span", { class: "hint block mono nowrap", text: h.id })),
    el("td", { text: eventsLabel(h.events) }),
    el("td", {}, h.disabled ? el("span", { class: "badge", text: "disabled" }) : "Active"),
    el("td", {}, timeEl(h.created_at)),
    el("td", { class: "row-actions" }, deliveriesButton, toggle, remove));
}

// Adding a webhook.

function updateEventsScope() {
  $("webhook-events-list").hidden = !$("webhook-events-some").checked;
}

$("webhook-events-all").addEventListener("change", updateEventsScope);
$("webhook-events-some").addEventListener("change", updateEventsScope);

$("add-webhook").addEventListener("click", () => {
  $("webhook-form").reset();
  clearError($("webhook-error"));
  $("webhook-url").removeAttribute("aria-invalid");
  $("webhook-events-list").replaceChildren(...Object.keys(ACTION_LABELS).map((a) =>
    checkbox("events", `webhook-event-${a.replace(".", "-")}`, a, `${ACTION_LABELS[a]} (${a})`)));
  updateEventsScope();
  openDialog($("webhook-dialog"), $("webhook-url"), $("add-webhook"), $("webhooks-title"));
});

$("webhook-cancel").addEventListener("click", () => $("webhook-dialog").close());

$("webhook-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const errorRegion = $("webhook-error");
  clearError(errorRegion);
  const urlField = $("webhook-url");
  urlField.removeAttribute("aria-invalid");
  const url = urlField.value.trim();
  if (!url) {
    urlField.setAttribute("aria-invalid", "true");
    showError(errorRegion, "Endpoint URL is required.");
    urlField.focus();
    return;
  }
  let events = ["*"];
  if ($("webhook-events-some").checked) {
    events = checked("webhook-events-list");
    if (events.length === 0) {
      showError(errorRegion, "Choose at least one event, or All events.");
      $("webhook-events-list").querySelector("input").focus();
      return;
    }
  }
  const body = { url, events };
  const description = $("webhook-description").value.trim();
  if (description) body.description = description;
  const submit = $("webhook-submit");
  submit.disabled = true;
  try {
    const created = await call("POST", orgPath("/webhooks"), body);
    closeQuietly($("webhook-dialog"));
    say(`Webhook ${created.id} created. Copy its signing secret now.`);
    showSecret(created, $("add-webhook"), $("webhooks-title"));
    loadWebhooks();
  } catch (err) {
    report(err, errorRegion, "Could not create the webhook: ");
    if (!err.handled && err.code === "invalid_request" && err.message.startsWith("url")) {
      urlField.setAttribute("aria-invalid", "true");
    }
    if (!err.handled) urlField.focus();
  } finally {
    submit.disabled = false;
  }
});

// The signing secret, shown once: it leaves the page when the dialog
// closes, however it closes.

function showSecret(h, returnTo, fallback) {
  $("secret-context").textContent = `The signing secret of the webhook to ${h.url} (${h.id}).`;
  $("new-secret").value = h.secret;
  $("copy-secret-status").textContent = "";
  openDialog($("secret-dialog"), $("new-secret"), returnTo, fallback);
}

function forgetSecret() {
  $("new-secret").value = "";
  $("copy-secret-status").textContent = "";
}

$("secret-dialog").addEventListener("cancel", forgetSecret);
$("secret-dialog").addEventListener("close", forgetSecret);
$("secret-done").addEventListener("click", () => {
  forgetSecret();
  $("secret-dialog").close();
});
$("copy-secret").addEventListener("click", () => copyField($("new-secret"), $("copy-secret-status"), "secret"));

// Enabling, disabling, deleting.

async function toggleWebhook(h, button) {
  button.disabled = true;
  try {
    await call("PATCH", orgPath(`/webhooks/${enc(h.id)}`), { disabled: !h.disabled });
    say(h.disabled ? `The webhook to ${h.url} is enabled.` : `The webhook to ${h.url} is disabled: it receives nothing until enabled again.`);
    $("webhooks-title").focus();
    await loadWebhooks();
  } catch (err) {
    report(err, $("alert"), "Could not change the webhook: ");
    button.disabled = false;
  }
}

async function deleteWebhook(h, opener) {
  const confirmed = await confirmAction({
    title: "Delete this webhook?",
    message: `The webhook to ${h.url} and its deliveries log are deleted: nothing more is sent to it, events in retry included. This cannot be undone.`,
    yes: "Delete webhook",
  }, opener, $("webhooks-title"));
  if (!confirmed) return;
  try {
    await call("DELETE", orgPath(`/webhooks/${enc(h.id)}`));
    say(`The webhook to ${h.url} is deleted.`);
    $("webhooks-title").focus();
    await loadWebhooks();
  } catch (err) {
    report(err, $("alert"), "Could not delete the webhook: ");
  }
}

// Recent deliveries of one webhook.

const deliveries = { hook: null };

async function openDeliveries(h, opener) {
  deliveries.hook = h;
  $("deliveries-title").textContent = `Recent deliveries to ${h.url}`;
  $("deliveries-caption").textContent = `Recent deliveries to ${h.url}, newest first`;
  $("deliveries-body").replaceChildren();
  $("deliveries-empty").hidden = true;
  clearError($("deliveries-error"));
  openDialog($("deliveries-dialog"), $("deliveries-close"), opener, $("webhooks-title"));
  await renderDeliveries();
}

async function renderDeliveries() {
  const h = deliveries.hook;
  if (!h) return;
  $("deliveries-table").setAttribute("aria-busy", "true");
  try {
    const q = new URLSearchParams({ limit: String(DELIVERIES_PAGE) });
    const list = (await call("GET", orgPath(`/webhooks/${enc(h.id)}/deliveries?${q}`))).deliveries;
    if (deliveries.hook !== h) return;
    $("deliveries-body").replaceChildren(...list.map(deliveryRow));
    $("deliveries-empty").hidden = list.length > 0;
  } catch (err) {
    report(err, $("deliveries-error"));
  } finally {
    $("deliveries-table").removeAttribute("aria-busy");
  }
}

function deliveryRow(d) {
  const detail = [d.http_status ? `HTTP ${d.http_status}` : "", d.error || ""].filter(Boolean).join(": ");
  return el("tr", { "data-status": d.status },
    el("th", { scope: "row" }, timeEl(d.time)),
    el("td", {}, ACTION_LABELS[d.type] || d.type, " ", el("code", { class: "hint", text: d.type }),
      el("span", { class: "hint block mono nowrap", text: d.event_id })),
    el("td", { text: String(d.attempt) }),
    el("td", {}, el("span", { class: "block delivery-result", text: DELIVERY_LABELS[d.status] || d.status }),
      detail ? el("span", { class: "hint block", text: detail }) : null));
}

$("deliveries-refresh").addEventListener("click", renderDeliveries);
$("deliveries-close").addEventListener("click", () => {
  deliveries.hook = null;
  $("deliveries-dialog").close();
});
$("deliveries-dialog").addEventListener("cancel", () => {
  deliveries.hook = null;
});

// ---- a user's usage and advice ----------------------------------------------

const HOUR = 3600 * 1000;
const ROUTES_SHOWN = 50;
const REFUSAL_LABELS = {
  role_forbidden: "Not allowed by its role or policies",
  account_forbidden: "An account it does not reach",
  account_required: "No account named",
  level_forbidden: "Beyond its level",
  user_type_forbidden: "Not for its type of user",
  ip_forbidden: "From a network it may not use",
  rate_limited: "Over its rate limit",
  expired_token: "An expired token",
  payload_too_large: "A body too large",
  too_many_headers: "Too many headers",
  store_unavailable: "The store was unavailable",
};
const SUGGESTION_LABELS = { role: "Narrower role", accounts: "Fewer accounts", policy: "A policy of what it uses", disable: "Disable" };
// The suggestions that change rights, which may be tried first.
const TRIABLE = new Set(["role", "accounts", "policy"]);
// Series colours are classes of app.css (the policy allows no inline
// style): admitted first, then the refusals, busiest first.
const SERIES = 6;
const hourFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

const usageView = { userId: "", user: null, generation: 0 };

function clearUsage() {
  usageView.userId = "";
  usageView.user = null;
  usageView.generation++;
  for (const id of ["usage-chart", "usage-legend", "usage-hours-head", "usage-hours-body", "usage-routes-body",
    "usage-refusals-body", "advice-accounts", "advice-statements", "advice-suggestions",
    "trial-rights", "trial-routes-body"]) $(id).replaceChildren();
  $("trial-panel").hidden = true;
}

const outcomeLabel = (o) => (o === "admitted" ? "Admitted" : REFUSAL_LABELS[o] || o);

// usageHours is the window chosen, in hours.
const usageHours = () => Number($("usage-window").value) || 168;

async function openUsage(userId) {
  if (usageView.userId !== userId) clearUsage();
  usageView.userId = userId;
  await renderUsage();
}

// renderUsage reads the user, its usage in the window and the advice on the
// same days, and draws them.
async function renderUsage() {
  const generation = ++usageView.generation;
  const userId = usageView.userId;
  const stale = () => generation !== usageView.generation || !state.me;
  const view = $("view-usage");
  view.setAttribute("aria-busy", "true");
  clearError($("usage-error"));
  clearError($("advice-error"));
  clearError($("trial-error"));
  const hours = usageHours();
  // Whole hours, up to the end of the hour under way, as the API counts.
  const to = new Date(Math.floor(Date.now() / HOUR) * HOUR + HOUR);
  const from = new Date(to.getTime() - hours * HOUR);
  const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
  try {
    await loadPolicies();
    const [u, usage, advice] = await Promise.all([
      call("GET", orgPath(`/users/${enc(userId)}`)),
      call("GET", orgPath(`/users/${enc(userId)}/usage?${q}`)),
      call("GET", orgPath(`/users/${enc(userId)}/advice?days=${Math.round(hours / 24)}`)),
    ]);
    if (stale()) return;
    usageView.user = u;
    drawUsageHeader(u);
    drawUsage(usage);
    drawTrial(u, usage);
    drawAdvice(u, advice);
  } catch (err) {
    if (!stale()) report(err, $("usage-error"), "Could not read the usage: ");
  } finally {
    if (!stale()) view.setAttribute("aria-busy", "false");
  }
}

$("usage-window").addEventListener("change", () => {
  if (usageView.userId && state.me) renderUsage();
});

function drawUsageHeader(u) {
  $("usage-title").textContent = `Usage of ${u.name}`;
  const where = u.level === "account" ? `account ${accountLabel(u.account)}` :
    (u.accounts || []).length ? `accounts ${(u.accounts || []).map(accountLabel).join(", ")}` : "no account";
  $("usage-scope").textContent = `${u.id} · ${ROLE_LABELS[u.role] || u.role}` +
    (u.role === "policy" ? ` (${(u.policies || []).map(policyLabel).join(", ")})` : "") +
    ` · ${where}${u.disabled ? " · disabled" : ""}`;
  $("usage-back").href = u.level === "account"
    ? `#/settings/account/${enc(u.account)}/programmatic-users`
    : "#/settings/organization/programmatic-users";
}

function drawUsage(report) {
  const admitted = report.outcomes.admitted || 0;
  $("usage-requests").textContent = countFormat.format(report.requests);
  $("usage-admitted").textContent = countFormat.format(admitted);
  $("usage-refused").textContent = countFormat.format(report.requests - admitted);
  // Outcomes in a fixed order: admitted, then refusals, busiest first.
  const outcomes = Object.keys(report.outcomes).sort((a, b) =>
    (b === "admitted") - (a === "admitted") || report.outcomes[b] - report.outcomes[a] || a.localeCompare(b));
  let refusals = 0;
  const series = new Map(outcomes.map((o) => [o, o === "admitted" ? "series-0" : `series-${1 + (refusals++ % (SERIES - 1))}`]));
  drawChart(report, outcomes, series);
  $("usage-legend").replaceChildren(...outcomes.map((o) => el("li", {},
    el("span", { class: `swatch ${series.get(o)}` }), `${outcomeLabel(o)} `, el("code", { class: "hint", text: o }),
    `: ${countFormat.format(report.outcomes[o])}`)));
  // The chart's text alternative: every hour with requests, as a table.
  $("usage-hours-head").replaceChildren(el("th", { scope: "col", text: "Hour" }),
    ...outcomes.map((o) => el("th", { scope: "col", class: "num", text: outcomeLabel(o) })),
    el("th", { scope: "col", class: "num", text: "Total" }));
  $("usage-hours-body").replaceChildren(...report.hours.map((h) => el("tr", {},
    el("th", { scope: "row" }, timeEl(h.hour)),
    ...outcomes.map((o) => el("td", { class: "num", text: countFormat.format(h.outcomes[o] || 0) })),
    el("td", { class: "num", text: countFormat.format(Object.values(h.outcomes).reduce((a, b) => a + b, 0)) }))));

  const routes = report.routes.slice(0, ROUTES_SHOWN);
  $("usage-routes-body").replaceChildren(...routes.map((r) => el("tr", {
    "data-method": r.method, "data-route": r.route, "data-account": r.account || "", "data-statement": r.statement || "",
    "data-outcome": r.outcome, "data-count": String(r.count),
  },
    el("td", {}, el("code", { text: r.method })),
    el("th", { scope: "row" }, el("code", { text: r.route })),
    el("td", { text: r.account ? accountLabel(r.account) : "—" }),
    el("td", {}, statementCell(r.statement)),
    el("td", {}, el("span", { class: `swatch ${series.get(r.outcome)}` }), r.outcome === "admitted" ? "Admitted" : el("code", { text: r.outcome })),
    el("td", { class: "num", text: countFormat.format(r.count) }))));
  $("usage-routes-more").hidden = report.routes.length <= ROUTES_SHOWN;
  $("usage-routes-more").textContent = `The ${ROUTES_SHOWN} busiest of ${report.routes.length} rows.`;
  $("usage-routes-empty").hidden = report.routes.length > 0;

  const refused = outcomes.filter((o) => o !== "admitted");
  $("usage-refusals-body").replaceChildren(...refused.map((o) => el("tr", { "data-outcome": o },
    el("th", { scope: "row" }, el("span", { class: `swatch ${series.get(o)}` }), el("span", { class: "block", text: outcomeLabel(o) }),
      el("code", { class: "hint", text: o })),
    el("td", {}, el("ul", { class: "plain" }, ...report.routes.filter((r) => r.outcome === o).slice(0, 10).map((r) =>
      el("li", {}, el("code", { text: `${r.method} ${r.route}` }), r.account ? ` in ${accountLabel(r.account)}` : "",
        `: ${countFormat.format(r.count)}`)))),
    el("td", { class: "num", text: countFormat.format(report.outcomes[o]) }))));
  $("usage-refusals-empty").hidden = refused.length > 0;
}

// statementCell names a policy statement "<policy id>#<index>" by its
// policy's name.
function statementCell(ref) {
  if (!ref) return "—";
  const [id, index] = ref.split("#");
  const p = state.policies.get(id);
  return el("span", {}, p ? el("span", { class: "block", text: `${p.name}, statement ${Number(index) + 1}` }) : null,
    el("code", { class: p ? "hint" : "", text: ref }));
}

// niceStep is a round step (1, 2 or 5 times a power of ten) of at least
// span/4, for the chart's scale.
function niceStep(span) {
  const raw = Math.max(span / 4, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

// drawChart draws requests per hour stacked by outcome, as SVG made with
// DOM calls: one group (g.bar-group) per hour with requests, one rect per
// outcome in it, in the order of the legend.
function drawChart(report, outcomes, series) {
  const svg = $("usage-chart");
  const node = (tag, props, ...children) => svgEl(svg, tag, props, ...children);
  const [W, H, left, right, top, bottom] = [960, 240, 44, 8, 10, 26];
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const from = new Date(report.from).getTime();
  const slots = Math.max(1, Math.round((new Date(report.to).getTime() - from) / HOUR));
  const slotW = plotW / slots;
  const barW = Math.max(slotW * 0.8, 0.8);
  const totals = report.hours.map((h) => Object.values(h.outcomes).reduce((a, b) => a + b, 0));
  const step = niceStep(Math.max(0, ...totals));
  const max = Math.max(step, Math.ceil(Math.max(0, ...totals) / step) * step);
  const y = (n) => top + plotH - (n / max) * plotH;
  const parts = [];
  for (let n = 0; n <= max; n += step) {
    parts.push(node("line", { class: "grid", x1: left, x2: W - right, y1: y(n), y2: y(n) }),
      node("text", { class: "axis", x: left - 6, y: y(n) + 4, "text-anchor": "end", text: countFormat.format(n) }));
  }
  // Time labels: every 4 hours over a day, each local midnight over a
  // week, every fifth over a month.
  let days = 0;
  for (let i = 0; i < slots; i++) {
    const at = new Date(from + i * HOUR);
    let label = "";
    if (slots <= 48) {
      if (at.getHours() % 4 === 0 && at.getMinutes() === 0) label = clockFormat.format(at);
    } else if (at.getHours() === 0) {
      if (slots <= 24 * 8 || days++ % 5 === 0) label = dayFormat.format(at);
    }
    if (label) {
      const x = left + i * slotW;
      parts.push(node("line", { class: "tick", x1: x, x2: x, y1: top + plotH, y2: top + plotH + 4 }),
        node("text", { class: "axis", x, y: H - 6, "text-anchor": "middle", text: label }));
    }
  }
  report.hours.forEach((h, k) => {
    const at = new Date(h.hour);
    const i = Math.round((at.getTime() - from) / HOUR);
    if (i < 0 || i >= slots) return;
    const x = left + i * slotW + (slotW - barW) / 2;
    const words = outcomes.filter((o) => h.outcomes[o]).map((o) => `${countFormat.format(h.outcomes[o])} ${o}`).join(", ");
    const group = node("g", { class: "bar-group", "data-hour": h.hour, "data-total": String(totals[k]) },
      node("title", { text: `${hourFormat.format(at)}: ${countFormat.format(totals[k])} requests (${words})` }));
    let base = 0;
    for (const o of outcomes) {
      const n = h.outcomes[o] || 0;
      if (!n) continue;
      group.append(node("rect", { class: `bar ${series.get(o)}`, "data-outcome": o, "data-count": String(n),
        x, width: barW, y: y(base + n), height: Math.max(y(base) - y(base + n), 0.5) }));
      base += n;
    }
    parts.push(group);
  });
  parts.push(node("line", { class: "baseline", x1: left, x2: W - right, y1: y(0), y2: y(0) }));
  svg.replaceChildren(...parts);

  let busiest = -1;
  totals.forEach((n, k) => { if (busiest < 0 || n > totals[busiest]) busiest = k; });
  $("usage-chart-summary").textContent = report.requests === 0
    ? `No requests from ${dateFormat.format(new Date(report.from))} to ${dateFormat.format(new Date(report.to))}.`
    : `${countFormat.format(report.requests)} requests in ${report.hours.length} of ${slots} hours, from ` +
      `${dateFormat.format(new Date(report.from))} to ${dateFormat.format(new Date(report.to))}; the busiest hour, ` +
      `${hourFormat.format(new Date(report.hours[busiest].hour))}, had ${countFormat.format(totals[busiest])}.`;
}

// ---- the trial: rights tried before they are enforced -------------------------

// drawTrial shows the user's proposed rights, when it has some, and the
// requests of the window they would have refused.
function drawTrial(u, report) {
  const p = u.proposed;
  $("trial-panel").hidden = !p;
  if (!p) {
    $("trial-rights").replaceChildren();
    $("trial-routes-body").replaceChildren();
    return;
  }
  const now = (text) => el("span", { class: "hint", text: ` (now ${text})` });
  const list = (ids, label) => (ids || []).length ? (ids || []).map(label).join(", ") : "none";
  const rights = [el("dt", { text: "Role" }),
    el("dd", { "data-role": p.role }, ROLE_LABELS[p.role] || p.role, p.role !== u.role ? now(ROLE_LABELS[u.role] || u.role) : null)];
  if (u.level !== "account") {
    rights.push(el("dt", { text: "Accounts" }), el("dd", {}, list(p.accounts, accountLabel),
      sameMembers(p.accounts, u.accounts) ? null : now(list(u.accounts, accountLabel))));
  }
  if (p.role === "policy") {
    rights.push(el("dt", { text: "Policies" }), el("dd", {}, list(p.policies, policyLabel),
      u.role === "policy" && !sameMembers(p.policies, u.policies) ? now(list(u.policies, policyLabel)) : null));
  }
  $("trial-rights").replaceChildren(...rights);

  const admitted = report.outcomes.admitted || 0;
  const n = report.would_refuse || 0;
  $("trial-summary").textContent = `Would have refused ${countFormat.format(n)} ${n === 1 ? "request" : "requests"}` +
    ` of the ${countFormat.format(admitted)} admitted in this window.`;
  const routes = (report.would_refuse_routes || []).slice(0, ROUTES_SHOWN);
  $("trial-routes-body").replaceChildren(...routes.map((r) => el("tr", {
    "data-method": r.method, "data-route": r.route, "data-account": r.account || "", "data-outcome": r.outcome,
    "data-count": String(r.count),
  },
    el("td", {}, el("code", { text: r.method })),
    el("th", { scope: "row" }, el("code", { text: r.route })),
    el("td", { text: r.account ? accountLabel(r.account) : "—" }),
    el("td", {}, el("code", { text: r.outcome }), el("span", { class: "block hint", text: outcomeLabel(r.outcome) })),
    el("td", { class: "num", text: countFormat.format(r.count) }))));
  $("trial-routes-wrap").hidden = routes.length === 0;
}

// sameMembers: the same IDs, in any order.
const sameMembers = (a, b) => JSON.stringify([...(a || [])].sort()) === JSON.stringify([...(b || [])].sort());

// trialCommit is the PATCH that makes the proposed rights the user's own
// and ends the trial, in one change.
function trialCommit(u) {
  const p = u.proposed;
  const patch = { role: p.role };
  if (u.level !== "account") patch.accounts = p.accounts || [];
  if (p.role === "policy") patch.policies = p.policies || [];
  patch.proposed = null;
  return patch;
}

// changeTrial asks, then sends the trial's commit or its end as an
// ordinary PATCH of the user, and reads the view again.
async function changeTrial(commit, opener) {
  const u = usageView.user;
  if (!u || !u.proposed) return;
  const patch = commit ? trialCommit(u) : { proposed: null };
  const what = commit ? "Commit the trial" : "End the trial";
  const confirmed = await confirmAction(commit ? {
    title: `Commit the rights under trial of ${u.name}?`,
    message: `${u.name} is changed: ${JSON.stringify(patch)}. The rights apply at once, on every gateway: ` +
      `the requests the trial counted as refused are refused from now on.`,
    yes: "Commit",
  } : {
    title: `End the trial of ${u.name}?`,
    message: `The rights under trial are dropped (${JSON.stringify(patch)}); ${u.name} keeps its own rights.`,
    yes: "End trial",
  }, opener, $("trial-title"));
  if (!confirmed) return;
  const errorRegion = $("trial-error");
  clearError(errorRegion);
  opener.disabled = true;
  try {
    const updated = await call("PATCH", orgPath(`/users/${enc(u.id)}`), patch);
    say(commit ? `Trial committed: ${updated.name} has the rights it tried, from now on.`
      : `Trial ended: ${updated.name} keeps its own rights.`);
    $("usage-title").focus();
    await renderUsage();
  } catch (err) {
    report(err, errorRegion, `Could not ${what.toLowerCase()}: `);
    if (!$("trial-panel").hidden) opener.focus();
  } finally {
    opener.disabled = false;
  }
}

$("trial-commit").addEventListener("click", () => changeTrial(true, $("trial-commit")));
$("trial-end").addEventListener("click", () => changeTrial(false, $("trial-end")));

// ---- advice -------------------------------------------------------------------

function drawAdvice(u, advice) {
  const days = Math.round((new Date(advice.to) - new Date(advice.from)) / (24 * HOUR));
  $("advice-scope").textContent = `What ${u.name} used of its rights in the last ${days} ${days === 1 ? "day" : "days"}: ` +
    `${countFormat.format(advice.admitted)} of ${countFormat.format(advice.requests)} requests admitted` +
    (advice.used_methods.length ? `, with ${advice.used_methods.join(", ")}.` : ".");
  const none = (text) => el("li", { class: "empty", text });
  const accounts = advice.unused_accounts.map((id) => el("li", {}, named((state.accounts.find((a) => a.id === id) || {}).name, id)));
  $("advice-accounts").replaceChildren(...(accounts.length ? accounts : [none("None: every account it reaches was used, or it reaches none.")]));
  const statements = advice.unused_statements.map((ref) => el("li", {},
    `${policyLabel(ref.policy)}, statement ${ref.index + 1}: `,
    el("code", { text: `${ref.statement.effect} ${ref.statement.methods.join(", ")} on ${ref.statement.paths.join(", ")}` })));
  $("advice-statements").replaceChildren(...(statements.length ? statements : [none("None.")]));
  const cards = advice.suggestions.map((sg) => suggestionCard(u, sg));
  $("advice-suggestions").replaceChildren(...(cards.length ? cards : [el("p", { class: "empty", text: "None: its rights fit what it used." })]));
}

function suggestionCard(u, sg) {
  const label = SUGGESTION_LABELS[sg.kind] || sg.kind;
  const apply = el("button", { type: "button", class: "primary small apply-suggestion" }, "Apply", srOnly(`: ${label}`));
  apply.addEventListener("click", () => applySuggestion(u, sg, apply));
  let tryFirst = null;
  if (TRIABLE.has(sg.kind)) {
    tryFirst = el("button", { type: "button", class: "secondary small try-suggestion" }, "Try first", srOnly(`: ${label}`));
    tryFirst.addEventListener("click", () => applySuggestion(u, sg, tryFirst, true));
  }
  return el("article", { class: "suggestion", "data-kind": sg.kind },
    el("h4", {}, label, " ", el("code", { class: "hint", text: sg.kind })),
    el("p", { text: `Why: ${sg.why}.` }),
    sg.policy ? el("p", { class: "hint", text: "First creates this policy:" }) : null,
    sg.policy ? el("pre", { class: "json policy-draft", text: jsonText(sg.policy) }) : null,
    el("p", { class: "hint", text: sg.policy ? "Then changes the user (PATCH), naming the new policy:" : "Changes the user (PATCH):" }),
    el("pre", { class: "json patch", text: jsonText(sg.patch) }),
    el("div", { class: "actions" }, apply, tryFirst));
}

// jsonText shows a value as indented JSON, lists of plain values on one
// line.
function jsonText(value) {
  const plain = String.raw`(?:"(?:[^"\\]|\\.)*"|-?[0-9.eE+-]+|true|false|null)`;
  return JSON.stringify(value, null, 2).replace(new RegExp(String.raw`\[\s*(${plain}(?:,\s*${plain})*)\s*\]`, "g"),
    (_, items) => `[${items.split(/,\s*\n\s*/).join(", ")}]`);
}

// sameRights reports whether two sets of rights (role, accounts, policies)
// are the same.
function sameRights(a, b) {
  const key = (r) => JSON.stringify([r.role, [...(r.accounts || [])].sort(), [...(r.policies || [])].sort()]);
  return key(a) === key(b);
}

// draftedBefore returns the organization's policy equal to a drafted one
// (name, account and statements), if there is one.
async function draftedBefore(draft) {
  const { policies } = await call("GET", orgPath("/policies"));
  const rules = (p) => JSON.stringify((p.statements || []).map((st) => [st.effect, st.methods, st.paths]));
  return policies.find((p) => p.name === draft.name && (p.account || "") === (draft.account || "") &&
    rules(p) === rules(draft)) || null;
}

// withPolicyID puts the new policy's ID where a patch says {new_policy_id}.
function withPolicyID(value, id) {
  if (value === "{new_policy_id}") return id;
  if (Array.isArray(value)) return value.map((v) => withPolicyID(v, id));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withPolicyID(v, id)]));
  }
  return value;
}

// trialOf is a suggestion's patch as proposed rights: the rights it names,
// the user's own for the rest (accounts of an organization-level user; the
// policies of a user of the policy role that stays so).
function trialOf(u, patch) {
  const proposed = { role: patch.role ?? u.role };
  if (u.level !== "account") proposed.accounts = patch.accounts ?? u.accounts ?? [];
  const policies = patch.policies ?? (u.role === "policy" && proposed.role === "policy" ? u.policies : undefined);
  if (policies !== undefined) proposed.policies = policies;
  return { proposed };
}

// applySuggestion asks, then sends the suggestion as the API's own calls:
// the policy draft first when there is one (unless made before), then an
// ordinary PATCH of the user — with trial, a PATCH of its proposed rights
// instead, not enforced. A policy created for a PATCH that is refused is
// deleted again.
async function applySuggestion(u, sg, opener, trial = false) {
  const label = SUGGESTION_LABELS[sg.kind] || sg.kind;
  const shown = trial ? trialOf(u, sg.patch) : sg.patch;
  const errorRegion = $("advice-error");
  clearError(errorRegion);
  // A policy made from this draft before (by Try first) is granted again
  // rather than made twice.
  let made = null;
  try {
    if (sg.policy) made = await draftedBefore(sg.policy);
  } catch (err) {
    report(err, errorRegion, `Could not ${trial ? "try" : "apply"} "${label}": `);
    return;
  }
  const first = !sg.policy ? "" : made ? `The policy "${made.name}" (${made.id}), made from this draft before, is granted: ` :
    `A new policy, "${sg.policy.name}", is created, then `;
  // Applying the very rights under trial commits the trial: it ends.
  const ends = !trial && u.proposed &&
    sameRights(trialOf(u, withPolicyID(sg.patch, made ? made.id : "{new_policy_id}")).proposed, u.proposed);
  const confirmed = await confirmAction(trial ? {
    title: `Try "${label}" on ${u.name} first?`,
    message: first + `${u.name} gets rights under trial: ${JSON.stringify(withPolicyID(shown, made ? made.id : "{new_policy_id}"))}` +
      (u.proposed ? `, in place of those it is trying` : "") +
      `. They are not enforced: every gateway keeps admitting by its own rights and counts the requests these would refuse.`,
    yes: "Try first",
  } : {
    title: `Apply "${label}" to ${u.name}?`,
    message: first + `${u.name} is changed: ${JSON.stringify(withPolicyID(sg.patch, made ? made.id : "{new_policy_id}"))}. ` +
      `It applies at once, on every gateway` + (ends ? `, and ends the trial of these same rights.` : "."),
    yes: "Apply",
  }, opener, $("advice-title"));
  if (!confirmed) return;
  opener.disabled = true;
  let created = null;
  try {
    let patch = shown;
    if (sg.policy) {
      if (!made) created = await call("POST", orgPath("/policies"), sg.policy);
      patch = withPolicyID(patch, (made || created).id);
    }
    if (ends) patch = { ...patch, proposed: null };
    const updated = await call("PATCH", orgPath(`/users/${enc(u.id)}`), patch);
    if (trial) {
      say(`${label} under trial: ${updated.name} keeps its rights; the requests the trial would refuse are counted.`);
      $("usage-title").focus();
      await renderUsage();
      if (!$("trial-panel").hidden) $("trial-title").focus();
      return;
    }
    say(`${label} applied: ${updated.name} is changed, from now on.`);
    $("advice-title").focus();
    await renderUsage();
  } catch (err) {
    let undone = "";
    if (created && !err.handled) {
      undone = await call("DELETE", orgPath(`/policies/${enc(created.id)}`)).then(
        () => ` (the policy ${created.id} created for it is deleted again)`,
        () => ` (the policy ${created.id} created for it remains)`);
    }
    report(err, errorRegion, `Could not ${trial ? "try" : "apply"} "${label}"${undone}: `);
    if (opener.isConnected) {
      opener.disabled = false;
      opener.focus();
    }
  }
}

// ---- start ------------------------------------------------------------------

async function boot() {
  if (!token) {
    showSignin();
    return;
  }
  showView("loading");
  try {
    await startSession(await api("GET", "/whoami"));
  } catch (err) {
    signOut("Your session has ended: " + messageOf(err));
  }
}

boot();
