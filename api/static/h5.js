"use strict";
// The H5 page: sign in with the SMS code, see balance and allowances (zh/en).
// It calls the public API like any app, as hotline's built-in public client.
(function () {
  const WORDS = {
    "zh-CN": { title: "话费查询", phone: "手机号码", send: "获取验证码", code: "短信验证码", login: "登录",
      balance: "话费余额", allowances: "套餐余量", refresh: "刷新", logout: "退出登录", other: "English",
      sent: "验证码已发送，请查看短信。", signedIn: "已登录：" },
    en: { title: "My balance", phone: "Phone number", send: "Send code", code: "SMS code", login: "Sign in",
      balance: "Balance", allowances: "Allowances", refresh: "Refresh", logout: "Sign out", other: "中文",
      sent: "The code is on its way by SMS.", signedIn: "Signed in: " },
  };
  let lang = localStorage.getItem("h5.lang") || ((navigator.language || "").startsWith("en") ? "en" : "zh-CN");
  let clientToken = null;
  let subscriber = sessionStorage.getItem("h5.token");
  let who = sessionStorage.getItem("h5.who") || "";
  const $ = (id) => document.getElementById(id);

  function say(text) { $("message").textContent = text || ""; }
  function words() { return WORDS[lang]; }
  function applyWords() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-t]").forEach((n) => { n.textContent = words()[n.dataset.t]; });
    $("lang").textContent = words().other;
    document.title = words().title;
  }

  async function call(method, path, token, body) {
    const headers = { "Accept-Language": lang };
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch("/api/v1" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { const e = new Error(data.title || r.statusText); e.problem = data; throw e; }
    return data;
  }
  async function client() {
    if (!clientToken) clientToken = (await call("POST", "/auth/h5")).access_token;
    return clientToken;
  }

  async function sendCode() {
    say("");
    try {
      await call("POST", "/auth/otp", await client(), { phone: $("phone").value, language: lang });
      say(words().sent);
      $("code").focus();
    } catch (e) { say(e.message); }
  }

  async function signIn(event) {
    event.preventDefault();
    say("");
    try {
      const t = await call("POST", "/auth/token", await client(), { phone: $("phone").value, code: $("code").value });
      subscriber = t.access_token; who = t.subscriber;
      sessionStorage.setItem("h5.token", subscriber); sessionStorage.setItem("h5.who", who);
      await show();
    } catch (e) { say(e.message); }
  }

  async function show() {
    say("");
    try {
      const [b, a] = await Promise.all([call("GET", "/me/balance", subscriber), call("GET", "/me/allowances", subscriber)]);
      $("signin").hidden = true; $("account").hidden = false;
      $("who").textContent = words().signedIn + who;
      $("balance").textContent = b.balance ? b.balance.display : "—";
      $("balance-text").textContent = b.text;
      const list = $("allowances"); list.replaceChildren();
      a.allowances.forEach((x) => { const li = document.createElement("li"); li.textContent = x.text; li.dataset.kind = x.kind; list.append(li); });
      $("as-of").textContent = b.stale ? (b.as_of_display || "") : "";
    } catch (e) {
      if (e.problem && e.problem.status === 401) signOut(false);
      say(e.message);
    }
  }

  async function signOut(remote) {
    if (remote !== false && subscriber) { try { await call("POST", "/auth/revoke", subscriber); } catch (e) { /* gone anyway */ } }
    subscriber = null; sessionStorage.removeItem("h5.token"); sessionStorage.removeItem("h5.who");
    $("account").hidden = true; $("signin").hidden = false; $("code").value = "";
  }

  $("lang").addEventListener("click", () => {
    lang = lang === "en" ? "zh-CN" : "en"; localStorage.setItem("h5.lang", lang); applyWords();
    if (subscriber) show();
  });
  $("send").addEventListener("click", sendCode);
  $("signin").addEventListener("submit", signIn);
  $("refresh").addEventListener("click", show);
  $("logout").addEventListener("click", () => signOut(true));
  applyWords();
  if (subscriber) show();
})();
