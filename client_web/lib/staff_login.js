// Sign-in for staff pages (console, supervisor): the session cookie is set by the
// server; the page keeps only the CSRF token it must send with state-changing requests.
// A one-time password must be replaced before anything else works.

import { api } from "./connection.js";
import { $, h, showScreen } from "./dom.js";
import { addStrings, t, serverText, translate, getLang, setLang } from "./i18n.js";

addStrings({
  login_title: ["工作人员登录", "Staff sign-in"],
  username: ["用户名", "Username"],
  password: ["密码", "Password"],
  sign_in: ["登录", "Sign in"],
  sign_out: ["退出", "Sign out"],
  new_password: ["新密码（至少 10 位，含字母和数字）", "New password (10+ characters, letters and digits)"],
  change_password: ["修改密码", "Change password"],
  must_change: ["首次登录请先修改一次性密码", "Replace your one-time password first"],
  wrong_role: ["此账号无权使用本页面", "This account may not use this page"],
});

/**
 * Resolve with {clerk, csrf_token} once signed in (an existing session counts).
 * `form` is a <form> with #username, #password, #new-password and #login-error.
 */
export async function signIn(form, { roles }) {
  try {
    const session = await api("/api/auth/session");
    if (!session.must_change_password && roles.includes(session.clerk.role)) return session;
  } catch {
    /* not signed in */
  }
  showScreen("login");
  return await new Promise((resolve) => {
    let pending = null;
    form.onsubmit = async (event) => {
      event.preventDefault();
      const error = $("#login-error", form);
      error.textContent = "";
      try {
        if (pending) {
          await api("/api/auth/password", {
            method: "POST", csrf: pending.csrf_token,
            body: { old_password: $("#password", form).value, new_password: $("#new-password", form).value },
          });
          pending = null;
        }
        const session = await api("/api/auth/login", {
          method: "POST", body: { username: $("#username", form).value.trim(), password: $("#password", form).value },
        });
        if (session.must_change_password) {
          pending = session;
          $("#new-password-row", form).hidden = false;
          error.textContent = t("must_change");
          return;
        }
        if (!roles.includes(session.clerk.role)) {
          error.textContent = t("wrong_role");
          return;
        }
        $("#password", form).value = "";
        resolve(session);
      } catch (err) {
        error.textContent = serverText(err.message);
        error.dataset.code = err.code;
      }
    };
  });
}

export async function signOut(csrf) {
  await api("/api/auth/logout", { method: "POST", csrf }).catch(() => {});
  location.reload();
}

/** The login form's markup, shared by the staff pages. */
export function loginForm() {
  return h("form", { id: "login-form", class: "card login" },
    h("h1", { "data-i18n": "login_title" }),
    h("label", {}, h("span", { "data-i18n": "username" }), h("input", { id: "username", autocomplete: "username", required: true })),
    h("label", {}, h("span", { "data-i18n": "password" }), h("input", { id: "password", type: "password", autocomplete: "current-password", required: true })),
    h("label", { id: "new-password-row", hidden: true }, h("span", { "data-i18n": "new_password" }),
      h("input", { id: "new-password", type: "password", autocomplete: "new-password" })),
    h("p", { id: "login-error", class: "error", role: "alert" }),
    h("button", { type: "submit", class: "primary", "data-i18n": "sign_in" }));
}

/**
 * How every staff page starts: its strings, the login form, the language switch (which
 * calls `onLanguage` to redraw what the page drew itself) and sign-in.
 * Resolves with {clerk, csrf_token}.
 */
export async function bootStaffPage({ roles, onLanguage }) {
  translate();
  $("#login").append(loginForm());
  translate($("#login"));
  $("#lang").onclick = () => {
    setLang(getLang() === "zh" ? "en" : "zh");
    onLanguage();
  };
  showScreen("boot");
  return signIn($("#login-form"), { roles });
}
