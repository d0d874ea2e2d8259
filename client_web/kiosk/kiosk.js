// The booth page. A booth is provisioned once with a one-time code
// (/kiosk/?provision=CODE, printed by `xiaowu kiosk provision`); the device token it
// gets back is kept in localStorage and sent as a bearer token and socket.io auth.

import { api } from "../lib/connection.js";
import { BoothCameras } from "../lib/cameras.js";
import { CitizenApp } from "../lib/citizen_app.js";
import { addStrings, t, translate } from "../lib/i18n.js";

const TOKEN_KEY = "xw:deviceToken";

addStrings({
  provisioning: ["正在开通本设备…", "Provisioning this booth…"],
  provision_failed: ["开通码无效或已使用", "The provisioning code is invalid or already used"],
});

async function deviceToken() {
  const params = new URLSearchParams(location.search);
  const code = params.get("provision");
  if (code) {
    document.getElementById("app").textContent = t("provisioning");
    try {
      const result = await api("/api/kiosk/provision", { method: "POST", body: { code } });
      localStorage.setItem(TOKEN_KEY, result.device_token);
    } catch {
      if (!localStorage.getItem(TOKEN_KEY)) {
        document.getElementById("app").textContent = t("provision_failed");
        return null;
      }
    }
    history.replaceState(null, "", location.pathname);
  }
  return localStorage.getItem(TOKEN_KEY);
}

const token = await deviceToken();
if (token !== null) {
  const app = new CitizenApp({
    root: document.getElementById("app"),
    namespace: "/kiosk",
    token,
    cameras: new BoothCameras(),
    booth: true,
  });
  window.xiaowu = app;
  await app.boot();
} else {
  translate();
}
