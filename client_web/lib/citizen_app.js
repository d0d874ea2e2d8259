// The citizen's side, shared by the booth (/kiosk) and the phone (/m): pick a matter,
// see its materials, queue, talk to the clerk with the document camera, rate, clear.
//
// What the page holds across a reload lives in sessionStorage (the matter, ticket and
// session, and the connection's last seq): a reloaded page resumes its place in the
// queue or its call. Everything is dropped when the session is over, so the next
// citizen at a booth sees nothing of the last one.

import "./citizen_strings.js";
import { Connection, api } from "./connection.js";
import { $, $all, h, showScreen, toast, countdown, currentScreen } from "./dom.js";
import { t, pick, getLang, setLang, serverText, translate } from "./i18n.js";
import { CallPeer, showStream } from "./peer.js";
import { watchDocument, promptText } from "./doc_prompts.js";
import { CaseLink } from "./case_link.js";
import { takeStill } from "./cameras.js";

const STATE_KEY = "xw:citizen:state";
const DONE_CLEAR_S = 12;

const TEMPLATE = `
<header class="bar">
  <div class="brand"><span class="logo">晓</span><span data-i18n="title"></span></div>
  <div class="place" id="place"></div>
  <div class="net" id="net" hidden data-i18n="offline"></div>
  <button class="lang" id="lang" type="button" data-i18n="lang_toggle"></button>
</header>
<main>
  <section data-screen="boot"><p class="notice" id="boot-text" data-i18n="connecting"></p></section>

  <section data-screen="home">
    <h1 data-i18n="pick_matter"></h1>
    <input id="search" type="search" autocomplete="off" data-i18n-placeholder="search_placeholder">
    <nav id="categories" class="chips"></nav>
    <div id="matters" class="matters"></div>
    <p id="no-match" class="notice" hidden data-i18n="no_match"></p>
  </section>

  <section data-screen="materials">
    <h1 id="matter-name"></h1>
    <p class="sub" id="matter-dept"></p>
    <h2 data-i18n="materials_title"></h2>
    <ol id="materials" class="checklist"></ol>
    <label class="priority"><input type="checkbox" id="priority"><span data-i18n="priority_label"></span></label>
    <div class="actions">
      <button type="button" class="secondary" id="back" data-i18n="back"></button>
      <button type="button" class="primary" id="join" data-i18n="join_queue"></button>
    </div>
  </section>

  <section data-screen="queue">
    <h1 data-i18n="queue_title"></h1>
    <p class="sub" id="queue-matter"></p>
    <div class="position" id="position"></div>
    <div class="estimate" id="estimate"></div>
    <p class="notice" id="queue-note"></p>
    <div class="actions"><button type="button" class="secondary" id="leave" data-i18n="leave_queue"></button></div>
  </section>

  <section data-screen="call">
    <div class="stage">
      <div class="remote">
        <video id="remote-video" playsinline autoplay></video>
        <audio id="remote-audio" autoplay></audio>
        <div class="who" id="clerk-name"></div>
        <div class="recording" id="recording" hidden data-i18n="recording_on"></div>
        <div class="overlay" id="call-status" data-i18n="call_connecting"></div>
      </div>
      <div class="side">
        <figure class="self"><video id="self-video" playsinline autoplay muted></video>
          <figcaption data-i18n="self_view"></figcaption></figure>
        <figure class="doc"><div class="doc-frame"><video id="doc-video" playsinline autoplay muted></video>
          <div class="guide" id="guide"></div></div>
          <figcaption><span data-i18n="doc_view"></span> · <span id="doc-prompt" data-i18n="doc_hint"></span></figcaption></figure>
        <button type="button" class="secondary" id="flip" hidden data-i18n="switch_camera"></button>
      </div>
    </div>
    <div class="call-bottom">
      <ol id="call-materials" class="checklist compact"></ol>
      <p class="feedback" id="capture-feedback" role="status" aria-live="polite"></p>
      <button type="button" class="danger" id="hangup" data-i18n="leave_call"></button>
    </div>
  </section>

  <section data-screen="rating">
    <h1 id="ended-title"></h1>
    <h2 data-i18n="rate_title"></h2>
    <div class="stars" id="stars"></div>
    <textarea id="reason" maxlength="200" rows="3" data-i18n-placeholder="rate_reason"></textarea>
    <div class="actions">
      <button type="button" class="secondary" id="skip" data-i18n="rate_skip"></button>
      <button type="button" class="primary" id="rate" disabled data-i18n="rate_submit"></button>
    </div>
  </section>

  <section data-screen="done">
    <h1 data-i18n="thanks"></h1>
    <p class="notice" id="clear-text"></p>
    <div class="actions"><button type="button" class="primary" id="restart" data-i18n="new_session"></button></div>
  </section>
</main>
<dialog id="consent">
  <h2 data-i18n="consent_title"></h2>
  <p data-i18n="consent_text"></p>
  <div class="actions">
    <button type="button" class="secondary" id="consent-no" data-i18n="consent_no"></button>
    <button type="button" class="primary" id="consent-yes" data-i18n="consent_yes"></button>
  </div>
</dialog>`;

/** The framing guide as fractions of the document picture (ID-card-ish, centred). */
const GUIDE = { x: 0.12, y: 0.12, w: 0.76, h: 0.76 };

export class CitizenApp {
  /**
   * @param {object} o
   * @param {HTMLElement} o.root
   * @param {"/kiosk"|"/citizen"} o.namespace
   * @param {string} o.token device token or entry token
   * @param {import("./cameras.js").BoothCameras|import("./cameras.js").PhoneCamera} o.cameras
   * @param {boolean} o.booth clears itself after inactivity and after each citizen
   * @param {number} [o.inactivityS]
   */
  constructor({ root, namespace, token, cameras, booth, inactivityS = 90 }) {
    this.root = root;
    this.namespace = namespace;
    this.token = token;
    this.cameras = cameras;
    this.booth = booth;
    this.inactivityS = inactivityS;
    this.catalogue = { categories: [], matters: [] };
    this.category = null;
    this.state = JSON.parse(sessionStorage.getItem(STATE_KEY) || "{}");
    this.peer = null;
    this.stopPrompts = null;
    this.stopClear = null;
    this.lastTouch = Date.now();
    this.leaving = false;
    this.rating = 0;
  }

  async boot() {
    this.root.innerHTML = TEMPLATE;
    translate(this.root);
    this._bindStatic();
    showScreen("boot");
    try {
      await this._loadCatalogue();
    } catch (err) {
      $("#boot-text").textContent = this.booth ? t("not_provisioned") : t("token_missing");
      $("#boot-text").dataset.code = err.code || "";
      return;
    }
    this.conn = new Connection(this.namespace, { auth: { token: this.token }, storageKey: this.namespace });
    this.caseLink = new CaseLink({ token: this.token });
    this._bindEvents();
    if (this.state.ticket || this.state.session) this.conn.setResumable(true);
    if (this.state.session) this._enterCall(this.state.session, { resumed: true });
    else if (this.state.ticket) this._showQueue(this.state.ticket);
    else this._home();
    if (this.booth) setInterval(() => this._checkInactivity(), 1000);
  }

  // ---- catalogue and picking ------------------------------------------------------------

  async _loadCatalogue() {
    if (this.booth) {
      const me = await api("/api/kiosk/me", { token: this.token });
      this.hut = me.hut;
      $("#place").textContent = pick(me.hut);
    } else {
      await api("/api/citizen/me", { token: this.token });
    }
    this.catalogue = await api("/api/catalogue", { token: this.token });
  }

  _home() {
    $("#search").value = "";
    this.category = null;
    this._renderCategories();
    this._renderMatters();
    showScreen("home");
  }

  _renderCategories() {
    const used = new Set(this.catalogue.matters.map((m) => m.category));
    const chips = [{ code: null }, ...this.catalogue.categories.filter((c) => used.has(c.code))];
    $("#categories").replaceChildren(
      ...chips.map((c) =>
        h("button", {
          type: "button",
          class: `chip${this.category === c.code ? " on" : ""}`,
          dataset: { category: c.code || "" },
          onclick: () => {
            this.category = c.code;
            this._renderCategories();
            this._renderMatters();
          },
        }, c.code ? pick(c) : t("all_categories")),
      ),
    );
  }

  _renderMatters() {
    const query = $("#search").value.trim().toLowerCase();
    const shown = this.catalogue.matters.filter((m) => {
      if (this.category && m.category !== this.category) return false;
      if (!query) return true;
      return [m.name_zh, m.name_en, m.code].some((s) => s.toLowerCase().includes(query));
    });
    $("#matters").replaceChildren(
      ...shown.map((m) =>
        h("button", { type: "button", class: "matter", dataset: { code: m.code }, onclick: () => this._showMaterials(m) },
          h("span", { class: "name" }, pick(m)),
          h("span", { class: "meta" }, t("minutes_expected", { n: m.expected_minutes }))),
      ),
    );
    $("#no-match").hidden = shown.length > 0;
  }

  _showMaterials(matter) {
    this.matter = matter;
    $("#matter-name").textContent = pick(matter);
    $("#matter-dept").textContent = t("minutes_expected", { n: matter.expected_minutes });
    const items = matter.materials.map((m) =>
      h("li", { class: m.required ? "required" : "optional" }, h("span", {}, pick(m)),
        h("em", {}, m.required ? t("required") : t("optional"))));
    $("#materials").replaceChildren(...(items.length ? items : [h("li", {}, t("no_materials"))]));
    $("#priority").checked = false;
    showScreen("materials");
  }

  async _join() {
    const button = $("#join");
    button.disabled = true;
    try {
      const openCameras = this.cameras.open().catch((err) => err);
      const ack = await this.conn.call("queue.join", {
        matter: this.matter.code,
        priority: $("#priority").checked ? "priority" : "normal",
      });
      this.conn.setResumable(true);
      this._save({ ticket: ack.ticket, matter: this.matter });
      this._showQueue(ack.ticket);
      const opened = await openCameras;
      if (opened instanceof Error) toast(t("camera_failed"), { kind: "error" });
    } catch (err) {
      toast(serverText(err.message) || t("error_generic"), { kind: "error" });
    } finally {
      button.disabled = false;
    }
  }

  // ---- queue ----------------------------------------------------------------------------

  _showQueue(ticket) {
    if (!ticket) return;
    const merged = { ...(this.state.ticket || {}), ...ticket };
    this._save({ ...this.state, ticket: merged });
    $("#queue-matter").textContent = pick(merged.matter);
    const offered = merged.state === "offered";
    $("#position").textContent = offered ? "" : merged.position === 1 ? t("queue_first") : t("queue_position", { n: merged.position - 1 });
    $("#position").dataset.position = merged.position ?? "";
    $("#estimate").textContent = offered ? "" : merged.estimate_minutes == null ? t("no_staff") : t("minutes_about", { n: merged.estimate_minutes });
    $("#queue-note").textContent = offered ? t("queue_offered") : merged.state === "paused" ? t("queue_paused") : "";
    if (currentScreen() !== "call") showScreen("queue");
    this.cameras.open().catch(() => {});
  }

  async _leaveQueue() {
    this.leaving = true;
    try {
      await this.conn.call("queue.leave", {});
    } catch {
      /* gone already */
    }
    this._clear();
  }

  // ---- call -----------------------------------------------------------------------------

  async _enterCall(started, { resumed = false } = {}) {
    if (this.callFor === started.session_id) return;
    this.callFor = started.session_id;
    // After a reload, negotiate only once the server has replayed what was missed: an
    // old answer in the replay must not meet this page's new offer.
    this.awaitingResume = resumed;
    this._save({ ...this.state, session: started });
    this.leaving = false;
    $("#clerk-name").textContent = t("call_clerk", { name: started.clerk.display_name });
    $("#call-status").hidden = false;
    $("#call-status").textContent = t("call_connecting");
    this._renderCallMaterials(started.materials, this.state.captured || {});
    $("#capture-feedback").textContent = "";
    $("#flip").hidden = this.booth;
    showScreen("call");
    if (!resumed && !this.state.consent) this._askConsent(started.session_id);
    try {
      await this.cameras.open();
    } catch {
      toast(t("camera_failed"), { kind: "error" });
    }
    const sections = this.cameras.sections();
    showStream($("#self-video"), new MediaStream([sections[0].track].filter(Boolean)), { muted: true });
    const docTrack = this.cameras.documentTrack();
    if (docTrack) showStream($("#doc-video"), new MediaStream([docTrack]), { muted: true });
    this._startPrompts();
    const ice = await api("/api/ice", { token: this.token }).catch(() => ({ iceServers: [] }));
    this.peer = new CallPeer({
      conn: this.conn,
      sessionId: started.session_id,
      iceServers: ice.iceServers,
      sections,
      preferH264: this.booth ? false : null,
      onRemote: (kind, index, stream) => {
        if (kind === "video" && index === 0) showStream($("#remote-video"), stream);
        if (kind === "audio") showStream($("#remote-audio"), stream);
      },
      onState: (state) => this._mediaState(state),
    });
    if (!this.awaitingResume) await this._negotiate();
  }

  _negotiate() {
    if (this.peer) this.peer.negotiate();
  }

  _mediaState(state) {
    const status = $("#call-status");
    if (state === "connected") {
      status.hidden = true;
      const session = this.state.session;
      if (session) this.conn.call("session.connected", { session_id: session.session_id }).catch(() => {});
    } else if (state === "failed") {
      status.hidden = false;
      status.textContent = t("call_reconnecting");
      this._negotiate();
    } else if (state === "disconnected") {
      status.hidden = false;
      status.textContent = t("call_reconnecting");
      setTimeout(() => {
        if (this.peer && this.peer.pc && this.peer.pc.connectionState === "disconnected") this._negotiate();
      }, 2000);
    }
  }

  _renderCallMaterials(materials, captured) {
    $("#call-materials").replaceChildren(
      ...(materials || []).map((m) =>
        h("li", { class: `${m.required ? "required" : "optional"} ${captured[m.kind] || ""}`, dataset: { kind: m.kind } }, pick(m))),
    );
  }

  _startPrompts() {
    if (this.stopPrompts) this.stopPrompts();
    const guide = $("#guide");
    Object.assign(guide.style, {
      left: `${GUIDE.x * 100}%`, top: `${GUIDE.y * 100}%`, width: `${GUIDE.w * 100}%`, height: `${GUIDE.h * 100}%`,
    });
    this.stopPrompts = watchDocument($("#doc-video"), GUIDE, (code) => {
      const text = code ? promptText(code) : promptText("ok");
      $("#doc-prompt").textContent = text;
      $("#doc-prompt").dataset.code = code || "ok";
      guide.classList.toggle("ok", !code);
    });
  }

  /** The clerk captured a material: show what was accepted (or what to fix). */
  _captured(data) {
    const session = this.state.session;
    if (!session || data.session_id !== session.session_id) return;
    const kind = data.slot.replace(/_\d+$/, "");
    const material = (session.materials || []).find((m) => m.kind === kind) || { name_zh: data.slot, name_en: data.slot };
    const ok = data.verdict === "ok";
    const captured = { ...(this.state.captured || {}), [kind]: ok ? "done" : "retake" };
    this._save({ ...this.state, captured });
    this._renderCallMaterials(session.materials, captured);
    const first = (data.prompts || [])[0];
    const prompt = first ? pick(first, "") || promptText(first.code) : promptText("no_document");
    $("#capture-feedback").textContent = ok
      ? t("captured_ok", { name: pick(material) })
      : t("captured_retake", { name: pick(material), prompt });
    $("#capture-feedback").dataset.verdict = data.verdict;
  }

  /**
   * The clerk asked for a document: a full-resolution still of the document camera, sent
   * with the request's id as its Idempotency-Key (a retry cannot add a second document).
   * capture.reply tells the console at once whether a still is coming; if not (or the
   * upload fails) the console takes a snapshot of the stream instead.
   */
  async _stillRequested(request) {
    const session = this.state.session;
    if (!session || request.session_id !== session.session_id) return;
    const reply = (ok) => this.conn.call("capture.reply", { session_id: session.session_id, request_id: request.request_id, ok }).catch(() => {});
    try {
      const blob = await takeStill(this.cameras.documentTrack());
      reply(true);
      const known = await this.caseLink.caseOf(session.session_id, this.state.case);
      const response = await this.caseLink.upload(known.case_id, request.slot, blob, request.request_id);
      if (!response.ok) {
        console.warn("still refused", response.status);
        reply(false);
      }
    } catch (err) {
      console.warn("still not sent", err);
      reply(false);
    }
  }

  _askConsent(sessionId) {
    const dialog = $("#consent");
    if (!dialog.open) dialog.showModal();
    const answer = async (granted) => {
      dialog.close();
      this._save({ ...this.state, consent: granted ? "granted" : "declined" });
      if (!granted) toast(t("consent_declined"));
      // Recorded by the server before any recording starts; the clerk is told.
      await this.conn.call("consent.recording", { session_id: sessionId, granted })
        .catch((err) => console.warn("consent not recorded", err.code));
    };
    $("#consent-yes").onclick = () => answer(true);
    $("#consent-no").onclick = () => answer(false);
  }

  async _hangup() {
    const session = this.state.session;
    if (!session || !confirm(t("leave_confirm"))) return;
    this.leaving = true;
    await this.conn.call("session.leave", { session_id: session.session_id }).catch(() => {});
    this._clear();
  }

  _ended(data) {
    const session = this.state.session;
    if (!session || data.session_id !== session.session_id) return;
    this._stopMedia();
    if (data.requeued) {
      this._save({ ticket: this.state.ticket, matter: this.state.matter });
      toast(t("ended_requeued"));
      this._showQueue({ state: "waiting" });
      return;
    }
    if (this.leaving) return this._clear();
    this.conn.setResumable(false);
    this.ended = { session_id: data.session_id, outcome: data.outcome, case: this.state.case };
    this._save({ ended: this.ended });
    $("#ended-title").textContent = data.outcome === "completed" ? t("ended_completed") : t("ended_other");
    this._renderStars();
    $("#reason").value = "";
    showScreen("rating");
  }

  _stopMedia() {
    this.callFor = null;
    this.awaitingResume = false;
    if (this.stopPrompts) this.stopPrompts();
    this.stopPrompts = null;
    if (this.peer) this.peer.close();
    this.peer = null;
    for (const id of ["#remote-video", "#remote-audio", "#self-video", "#doc-video"]) {
      const el = $(id);
      if (el) el.srcObject = null;
    }
    if ($("#consent").open) $("#consent").close();
  }

  // ---- rating and clearing --------------------------------------------------------------

  _renderStars() {
    this.rating = 0;
    $("#rate").disabled = true;
    $("#stars").replaceChildren(
      ...[5, 4, 3, 2, 1].map((score) =>
        h("button", {
          type: "button", class: "star", dataset: { score },
          onclick: (event) => {
            this.rating = score;
            $all("#stars .star").forEach((b) => b.classList.toggle("on", b === event.currentTarget));
            $("#rate").disabled = false;
          },
        }, h("span", { class: "face" }, "★".repeat(score)), h("span", {}, t(`rate_${score}`)))),
    );
  }

  async _submitRating(skip) {
    const ended = this.ended || this.state.ended;
    if (!skip && ended && this.rating) {
      try {
        const known = await this.caseLink.caseOf(ended.session_id, this.state.case || ended.case);
        await this.caseLink.rate(known.case_id, this.rating, $("#reason").value.trim());
      } catch (err) {
        if (err.code === "already_rated") return this._done();
        toast(serverText(err.message) || t("error_generic"), { kind: "error" });
        return;
      }
    }
    this._done();
  }

  _done() {
    showScreen("done");
    this.stopClear = countdown(DONE_CLEAR_S, (n) => ($("#clear-text").textContent = t("clearing", { n })), () => this._clear());
  }

  /** Nothing of this citizen stays on screen or in storage; cameras of a phone are freed. */
  _clear() {
    if (this.stopClear) this.stopClear();
    this.stopClear = null;
    this._stopMedia();
    this.ended = null;
    this.leaving = false;
    if (this.conn) this.conn.setResumable(false);
    sessionStorage.removeItem(STATE_KEY);
    this.state = {};
    this.matter = null;
    $("#reason").value = "";
    $("#capture-feedback").textContent = "";
    $("#call-materials").replaceChildren();
    $("#clerk-name").textContent = "";
    $("#recording").hidden = true;
    if (!this.booth) this.cameras.close();
    if (this.booth && getLang() !== "zh") setLang("zh", this.root);
    this._home();
  }

  _checkInactivity() {
    const screen = currentScreen();
    if (!["materials", "rating"].includes(screen) && !(screen === "home" && ($("#search").value || this.category))) return;
    if (Date.now() - this.lastTouch > this.inactivityS * 1000) {
      if (screen === "rating") this._submitRating(true);
      else this._clear();
    }
  }

  _save(state) {
    this.state = state;
    sessionStorage.setItem(STATE_KEY, JSON.stringify(state));
  }

  // ---- wiring ---------------------------------------------------------------------------

  _bindStatic() {
    $("#lang").onclick = () => {
      setLang(getLang() === "zh" ? "en" : "zh", this.root);
      this._relabel();
    };
    $("#search").addEventListener("input", () => this._renderMatters());
    $("#back").onclick = () => this._home();
    $("#join").onclick = () => this._join();
    $("#leave").onclick = () => this._leaveQueue();
    $("#hangup").onclick = () => this._hangup();
    $("#rate").onclick = () => this._submitRating(false);
    $("#skip").onclick = () => this._submitRating(true);
    $("#restart").onclick = () => this._clear();
    $("#flip").onclick = async () => {
      const track = await this.cameras.flip();
      if (this.peer) await this.peer.replaceTrack(0, track);
      showStream($("#self-video"), new MediaStream([track]), { muted: true });
      showStream($("#doc-video"), new MediaStream([track]), { muted: true });
    };
    for (const type of ["pointerdown", "keydown", "input"]) {
      document.addEventListener(type, () => (this.lastTouch = Date.now()), { capture: true });
    }
  }

  /** After a language switch: the dynamic text. */
  _relabel() {
    if (this.catalogue.matters.length) {
      this._renderCategories();
      this._renderMatters();
    }
    if (this.hut) $("#place").textContent = pick(this.hut);
    if (this.matter && currentScreen() === "materials") this._showMaterials(this.matter);
    if (this.state.ticket && currentScreen() === "queue") this._showQueue({});
    if (this.state.session && currentScreen() === "call") {
      $("#clerk-name").textContent = t("call_clerk", { name: this.state.session.clerk.display_name });
      this._renderCallMaterials(this.state.session.materials, this.state.captured || {});
    }
    if (currentScreen() === "rating") this._renderStars();
  }

  _bindEvents() {
    const c = this.conn;
    c.on("status", ({ state }) => ($("#net").hidden = state === "online"));
    c.on("refused", ({ code }) => {
      if (["device_invalid", "device_revoked", "token_expired", "token_bad_signature", "not_authenticated"].includes(code)) {
        $("#boot-text").textContent = this.booth ? t("not_provisioned") : t("token_missing");
        showScreen("boot");
      }
    });
    c.on("queue.update", (ticket) => {
      if (this.state.ticket && ticket.ticket_id === this.state.ticket.ticket_id && !this.state.session) this._showQueue(ticket);
    });
    c.on("session.started", (data) => this._enterCall(data));
    c.on("session.state", (data) => {
      if (data.state === "active") $("#call-status").hidden = true;
    });
    c.on("session.ended", (data) => this._ended(data));
    c.on("media.failed", () => this._negotiate());
    c.on("case.opened", (data) => {
      if (this.state.session && data.session_id === this.state.session.session_id) this._save({ ...this.state, case: data });
    });
    c.on("case.document", (data) => this._captured(data));
    c.on("capture.request", (data) => this._stillRequested(data));
    c.on("recording.state", (data) => {
      if (this.state.session && data.session_id === this.state.session.session_id) $("#recording").hidden = data.state !== "recording";
    });
    c.on("resumed", (ack) => this._resumed(ack));
  }

  _resumed(ack) {
    if (ack.error) {
      if (this.awaitingResume) {
        this.awaitingResume = false;
        this._negotiate();
      }
      return;
    }
    const ticket = ack.ticket;
    if (!ticket) {
      // Gone while away (a replayed session.ended has already been handled, if any).
      if (!this.state.session && !this.state.ended && currentScreen() !== "rating") this._clear();
      return;
    }
    if (this.state.session && ticket.session_id === this.state.session.session_id) {
      const waiting = this.awaitingResume;
      this.awaitingResume = false;
      if (waiting || (this.peer && (!this.peer.pc || this.peer.pc.connectionState !== "connected"))) this._negotiate();
      return;
    }
    if (!this.state.session) this._showQueue(ticket);
  }
}
