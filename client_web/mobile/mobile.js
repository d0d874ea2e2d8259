// The phone page, opened by the mini-program in a web view as /m/?t=<entry token>.
// The token is moved out of the address bar into sessionStorage at once (it must not
// end up in screenshots, history or a shared link). One camera, front or back.

import { PhoneCamera } from "../lib/cameras.js";
import { CitizenApp } from "../lib/citizen_app.js";

const TOKEN_KEY = "xw:entryToken";
const params = new URLSearchParams(location.search);
if (params.get("t")) {
  sessionStorage.setItem(TOKEN_KEY, params.get("t"));
  history.replaceState(null, "", location.pathname);
}

const app = new CitizenApp({
  root: document.getElementById("app"),
  namespace: "/citizen",
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  cameras: new PhoneCamera(),
  booth: false,
});
window.xiaowu = app;
await app.boot();

// A network switch (Wi-Fi <-> mobile data): reconnect at once instead of waiting for
// the transport's ping timeout; socket.io then resumes and the call renegotiates.
window.addEventListener("online", () => {
  if (app.conn) app.conn.bounce();
});
