// The clerk console: presence, offers (sound, countdown, Enter/Esc), the call with the
// citizen's face and document camera, captures and the case panel, wrap-up, the queue
// overview and the clerk's own figures for the day.

import "./strings.js";
import { Connection, api } from "../lib/connection.js";
import { $, h, showScreen, toast, countdown } from "../lib/dom.js";
import { t, pick, serverText } from "../lib/i18n.js";
import { CallPeer, showStream } from "../lib/peer.js";
import { bootStaffPage, signOut } from "../lib/staff_login.js";
import { OfferAlert } from "./offer_alert.js";
import { CasePanel } from "./case_panel.js";

const SESSION_KEY = "xw:console:session";

class Console {
  constructor() {
    this.presence = "offline";
    this.offer = null;
    this.session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    this.peer = null;
    this.local = null;
    this.alert = new OfferAlert();
    this.stopOfferCountdown = null;
    this.stopWrapup = null;
    this.readOnly = false;
  }

  async boot() {
    const signed = await bootStaffPage({
      roles: ["clerk", "supervisor", "admin"],
      onLanguage: () => this._relabel(),
    });
    this.clerk = signed.clerk;
    this.csrf = signed.csrf_token;
    $("#me").textContent = `${this.clerk.display_name} · ${this.clerk.department}`;
    $("#logout").hidden = false;
    $("#logout").onclick = () => signOut(this.csrf);
    $("#presence-controls").hidden = false;
    this.cases = new CasePanel({
      form: $("#case-form"), slots: $("#slots"), csrf: this.csrf, onComplete: (o) => this._end(o),
      requestStill: (sessionId, slot) => this.conn.call("capture.request", { session_id: sessionId, slot }),
    });
    this._bind();
    this.conn = new Connection("/clerk", { storageKey: `/clerk:${this.clerk.subject}` });
    this._bindSocket();
    if (this.session) this.conn.setResumable(true);
    showScreen("desk");
    this._renderIdle();
    this._loadFigures();
  }

  _bind() {
    $("#go-available").onclick = () => this._setPresence("available");
    $("#go-break").onclick = () => this._setPresence("break");
    $("#accept").onclick = () => this._accept();
    $("#decline").onclick = () => this._decline();
    $("#record").onclick = () => this._toggleRecording();
    $("#wrapup-done").onclick = () => this.conn.call("wrapup.done", {}).catch((e) => toast(serverText(e.message), { kind: "error" }));
    document.addEventListener("keydown", (event) => {
      if (!this.offer || $("#offer").hidden) return;
      const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
      if (typing) return;
      if (event.key === "Enter") {
        event.preventDefault();
        this._accept();
      } else if (event.key === "Escape") {
        event.preventDefault();
        this._decline();
      }
    });
  }

  _bindSocket() {
    const c = this.conn;
    c.on("status", ({ state }) => {
      $("#net").hidden = state === "online";
      if (state === "online") c.call("queue.overview", {}).then((ack) => this._overview(ack.queues)).catch(() => {});
    });
    c.on("refused", ({ code }) => {
      if (code === "session_expired" || code === "not_authenticated") location.reload();
    });
    // A step of a call carries the clerk's new state as `presence` (one message, not two);
    // every other change of state comes as a `presence` event.
    c.on("presence", ({ state }) => this._presence(state));
    c.on("offer", (offer) => {
      this._offered(offer);
      if (offer.presence) this._presence(offer.presence);
    });
    c.on("offer.withdrawn", (data) => {
      if (this.offer && this.offer.offer_id === data.offer_id) {
        this._clearOffer();
        toast(t("offer_gone"));
      }
    });
    c.on("session.started", (data) => {
      if (data.presence) this._presence(data.presence);
      this._startCall(data);
    });
    c.on("session.state", (data) => {
      if (this.session && data.session_id === this.session.session_id) this._callState(data.state === "active" ? "call_active" : "call_connecting");
    });
    c.on("session.ended", (data) => {
      this._ended(data);
      if (!data.presence) return;
      this._presence(data.presence);
      if (data.presence === "wrap_up") this._wrapup(data.wrap_up_s);
    });
    c.on("media.failed", () => this._negotiate());
    c.on("queue.overview", ({ queues }) => this._overview(queues));
    c.on("case.document", (data) => this.cases.documentAdded(data));
    c.on("capture.reply", (data) => this.cases.captureReply(data));
    c.on("recording.state", (data) => {
      if (this.session && data.session_id === this.session.session_id) {
        this.recording = data.state === "recording";
        this._recordingButton();
      }
    });
    c.on("consent.recording", (data) => {
      if (this.session && data.session_id === this.session.session_id) this._consent(data.granted);
    });
    c.on("tab.inactive", () => this._readOnly(true));
    c.on("tab.active", () => this._readOnly(false));
    c.on("resumed", (ack) => this._resumed(ack));
  }

  // ---- presence and offers --------------------------------------------------------------

  async _setPresence(state) {
    try {
      const ack = await this.conn.call("presence.set", { state });
      this._presence(ack.state);
      this._figure("sessions_today", ack.sessions_today);
    } catch (err) {
      toast(serverText(err.message), { kind: "error" });
    }
  }

  _presence(state) {
    this.presence = state;
    const label = $("#presence-state");
    label.textContent = t(`state_${state}`);
    label.dataset.state = state;
    $("#go-available").disabled = ["available", "offered", "busy"].includes(state);
    $("#go-break").disabled = ["break", "offered", "busy"].includes(state);
    if (state !== "wrap_up" && this.stopWrapup) {
      this.stopWrapup();
      this.stopWrapup = null;
      $("#wrapup").hidden = true;
    }
    if (state === "available" || state === "wrap_up") this._loadFigures();
    this._renderIdle();
  }

  _renderIdle() {
    const busy = this.offer || this.session || !$("#wrapup").hidden;
    $("#idle").hidden = Boolean(busy);
    const key = { available: "idle_available", break: "idle_break", away: "idle_away" }[this.presence] || "idle_offline";
    $("#idle-text").textContent = t(key);
  }

  _offered(offer) {
    this.offer = offer;
    $("#offer-matter").textContent = pick(offer.matter);
    const facts = [
      [t("offer_from"), offer.hut ? pick(offer.hut) : t("channel_mobile")],
      [t("offer_channel"), t(`channel_${offer.channel}`)],
      [t("offer_waited"), `${Math.round(offer.waited_s)} s${offer.requeued ? " " + t("requeued_note") : ""}`],
      [t("offer_priority"), offer.priority === "priority" ? t("priority_yes") : t("priority_no")],
    ];
    $("#offer-facts").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    $("#offer").hidden = false;
    this._renderIdle();
    this.alert.start();
    if (this.stopOfferCountdown) this.stopOfferCountdown();
    this.stopOfferCountdown = countdown(offer.expires_in_s, (n) => ($("#offer-countdown").textContent = t("seconds", { n })));
    $("#accept").focus();
  }

  _clearOffer() {
    this.offer = null;
    this.alert.stop();
    if (this.stopOfferCountdown) this.stopOfferCountdown();
    this.stopOfferCountdown = null;
    $("#offer").hidden = true;
    this._renderIdle();
  }

  async _accept() {
    if (!this.offer || this.readOnly) return;
    const offer = this.offer;
    this._clearOffer();
    try {
      const ack = await this.conn.call("offer.accept", { offer_id: offer.offer_id });
      await this._startCall(ack.session);
    } catch (err) {
      toast(serverText(err.message), { kind: "error" });
    }
  }

  async _decline() {
    if (!this.offer || this.readOnly) return;
    const offer = this.offer;
    this._clearOffer();
    await this.conn.call("offer.decline", { offer_id: offer.offer_id, reason: "declined_by_clerk" }).catch((err) => toast(serverText(err.message), { kind: "error" }));
  }

  // ---- the call -------------------------------------------------------------------------

  async _startCall(started, { resumed = false } = {}) {
    if (this.callFor === started.session_id) return;
    this.callFor = started.session_id;
    this.awaitingResume = resumed;
    this.session = started;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(started));
    this.conn.setResumable(true);
    $("#call-matter").textContent = pick(started.matter);
    $("#call-origin").textContent = started.hut ? pick(started.hut) : t("channel_mobile");
    this._callState("call_connecting");
    this.recording = false;
    this._consent(undefined);
    $("#call").hidden = false;
    $("#wrapup").hidden = true;
    this._renderIdle();
    this.cases.open(started);
    try {
      if (!this.local) this.local = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: true });
      showStream($("#self-video"), this.local, { muted: true });
    } catch {
      toast(t("camera_failed") || "camera", { kind: "error" });
    }
    const ice = await api("/api/ice").catch(() => ({ iceServers: [] }));
    const video = this.local ? this.local.getVideoTracks()[0] : null;
    const audio = this.local ? this.local.getAudioTracks()[0] : null;
    this.peer = new CallPeer({
      conn: this.conn,
      sessionId: started.session_id,
      iceServers: ice.iceServers,
      sections: [
        { kind: "video", track: video, direction: video ? "sendrecv" : "recvonly" },
        { kind: "video", track: null, direction: "recvonly" },
        { kind: "audio", track: audio, direction: audio ? "sendrecv" : "recvonly" },
      ],
      onRemote: (kind, index, stream) => {
        if (kind === "video") showStream($(index === 0 ? "#citizen-face" : "#citizen-doc"), stream, { muted: true });
        if (kind === "audio") showStream($("#citizen-audio"), stream);
      },
      onState: (state) => this._mediaState(state),
    });
    if (!this.awaitingResume) await this._negotiate();
  }

  _negotiate() {
    if (this.peer) this.peer.negotiate();
  }

  _mediaState(state) {
    if (state === "connected") {
      this._callState("call_active");
      if (this.session) this.conn.call("session.connected", { session_id: this.session.session_id }).catch(() => {});
    } else if (state === "failed") {
      this._callState("call_reconnecting");
      this._negotiate();
    } else if (state === "disconnected") {
      this._callState("call_reconnecting");
    }
  }

  _consent(granted) {
    const pill = $("#call-consent");
    pill.hidden = granted === undefined;
    pill.dataset.granted = String(granted);
    pill.textContent = granted ? t("consent_granted") : t("consent_declined");
    this.consentGranted = granted === true;
    this._recordingButton();
  }

  _recordingButton() {
    const button = $("#record");
    button.hidden = !this.session;
    button.disabled = !this.consentGranted && !this.recording;
    button.textContent = this.recording ? t("record_stop") : t("record_start");
    button.classList.toggle("danger", Boolean(this.recording));
  }

  async _toggleRecording() {
    if (!this.session) return;
    try {
      const ack = await this.conn.call(this.recording ? "recording.stop" : "recording.start", { session_id: this.session.session_id });
      this.recording = ack.state === "recording";
    } catch (err) {
      toast(serverText(err.message), { kind: "error" });
    }
    this._recordingButton();
  }

  _callState(key) {
    $("#call-state").textContent = t(key);
    $("#call-state").dataset.key = key;
  }

  async _end(outcome) {
    if (!this.session) return;
    if (outcome !== "completed" && !confirm(t("end_confirm"))) return;
    try {
      await this.conn.call("session.end", { session_id: this.session.session_id, outcome });
    } catch (err) {
      toast(serverText(err.message), { kind: "error" });
    }
  }

  _ended(data) {
    if (!this.session || data.session_id !== this.session.session_id) return;
    if (data.reason === "citizen_left" || data.reason === "citizen_lost") toast(t("session_ended_citizen"));
    this._stopCall();
  }

  _stopCall() {
    if (this.peer) this.peer.close();
    this.peer = null;
    this.callFor = null;
    this.session = null;
    sessionStorage.removeItem(SESSION_KEY);
    this.conn.setResumable(false);
    for (const id of ["#citizen-face", "#citizen-doc", "#citizen-audio"]) $(id).srcObject = null;
    $("#call").hidden = true;
    this.recording = false;
    this.consentGranted = false;
    this.cases.close();
    this._renderIdle();
  }

  _wrapup(seconds) {
    $("#wrapup").hidden = false;
    this._renderIdle();
    if (this.stopWrapup) this.stopWrapup();
    this.stopWrapup = countdown(seconds, (n) => ($("#wrapup-countdown").textContent = t("seconds", { n })));
  }

  _resumed(ack) {
    if (ack.error) return;
    if (ack.state) this._presence(ack.state);
    if (this.session && ack.session_id === this.session.session_id) {
      const waiting = this.awaitingResume;
      this.awaitingResume = false;
      if (waiting || (this.peer && (!this.peer.pc || this.peer.pc.connectionState !== "connected"))) this._negotiate();
    } else if (this.session && !ack.session_id) {
      this._stopCall();
    }
  }

  _readOnly(flag) {
    this.readOnly = flag;
    $("#tab-inactive").hidden = !flag;
    for (const id of ["#go-available", "#go-break", "#accept", "#decline"]) $(id).disabled = flag || $(id).disabled;
    if (!flag) this._presence(this.presence);
  }

  // ---- overview and figures -------------------------------------------------------------

  _overview(queues) {
    this.queues = queues || [];
    const rows = this.queues.filter((q) => q.waiting > 0 || q.paused);
    $("#overview tbody").replaceChildren(
      ...rows.map((q) => h("tr", { dataset: { code: q.code } }, h("td", {}, pick(q), q.paused ? " ⏸" : ""),
        h("td", { class: "num" }, q.waiting), h("td", { class: "num" }, q.priority_waiting))),
    );
    $("#overview-empty").hidden = rows.length > 0;
  }

  async _loadFigures() {
    try {
      this.figures = await api("/api/stats/me");
    } catch {
      this.figures = this.figures || {};
    }
    this._renderFigures();
  }

  _figure(name, value) {
    this.figures = { ...(this.figures || {}), [name]: value };
    this._renderFigures();
  }

  _renderFigures() {
    const f = this.figures || {};
    $("#figures").textContent = t("fig_sessions_short", { n: f.sessions_today ?? 0 });
    const rows = [
      ["fig_sessions", f.sessions_today ?? 0],
      ["fig_completed", f.completed_today ?? "—"],
      ["fig_avg_handle", f.average_handle_s != null ? `${Math.round(f.average_handle_s / 6) / 10} min` : "—"],
      ["fig_rating", f.average_rating != null ? f.average_rating.toFixed(1) : "—"],
    ];
    $("#my-stats").replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, t(k)), h("dd", { dataset: { figure: k } }, String(v))]));
  }

  _relabel() {
    this._presence(this.presence);
    if (this.offer) this._offered(this.offer);
    if (this.queues) this._overview(this.queues);
    this._renderFigures();
    if (this.session) {
      $("#call-matter").textContent = pick(this.session.matter);
      this.cases.relabel();
    }
  }
}

const app = new Console();
window.xiaowu = app;
await app.boot();
if (app.session) app._startCall(app.session, { resumed: true });
