// The case panel of a call: one capture button per checklist slot (showing the processed
// photo and its quality verdict), waivers, the applicant's fields with identity-number
// checking, notes and the outcome. The case lives on the server (docs/protocol.md,
// "Cases"); CasesClient is its HTTP side.

import { h, $, toast } from "../lib/dom.js";
import { t, pick, serverText } from "../lib/i18n.js";
import { checkIdNumber } from "../lib/id_number.js";
import { CasesClient } from "./cases_client.js";

const REPLY_WAIT_MS = 1500; // the citizen's page says at once whether a still is coming
const UPLOAD_WAIT_MS = 30000; // then upload + pipeline (its workers start on first use)

export class CasePanel {
  /**
   * @param {object} o
   * @param {(sessionId: string, slot: string) => Promise<unknown>} o.requestStill asks the
   *   citizen's page for a full-resolution still (capture.request)
   */
  constructor({ form, slots, csrf, onComplete, requestStill }) {
    this.form = form;
    this.requestStill = requestStill;
    this.waiting = new Map();
    this.early = new Map();
    this.slotsEl = slots;
    this.client = new CasesClient(csrf);
    this.onComplete = onComplete;
    this.session = null;
    this.case = null;
    this.shown = {};
    this.images = new Map();
    this.capturing = new Set();
  }

  /**
   * One <img> per document, kept across re-renders: images are served no-store, so a new
   * element would fetch the photo again.
   */
  _image(result, alt) {
    let img = this.images.get(result.document_id);
    if (!img) {
      img = h("img", { src: result.url, alt, dataset: { document: result.document_id } });
      this.images.set(result.document_id, img);
    }
    return img;
  }

  async open(session) {
    this.session = session;
    this.case = null;
    this.shown = {};
    this._renderForm();
    this._renderSlots();
    try {
      this._loaded(await this.client.forSession(session));
      this._fillForm();
    } catch (err) {
      toast(serverText(err.message), { kind: "error" });
    }
  }

  close() {
    this.session = null;
    this.case = null;
    this.shown = {};
    this.images.clear();
    this.form.replaceChildren();
    this.slotsEl.replaceChildren();
  }

  relabel() {
    if (!this.session) return;
    const values = this._values();
    this._renderForm();
    this._setValues(values);
    this._renderSlots();
  }

  _loaded(record) {
    this.case = record;
    for (const doc of record.documents || []) this._remember(doc);
    this._renderSlots();
    const number = $("#case-number", this.form);
    if (number) number.textContent = record.number || "";
  }

  /** The newest document of each slot is the one shown. */
  _remember(doc) {
    const quality = doc.quality || {};
    this.shown[doc.slot] = {
      document_id: doc.document_id,
      url: doc.processed.url,
      verdict: quality.verdict || "ok",
      prompts: quality.prompt_texts || [],
    };
  }

  _slotList() {
    if (this.case) return this.case.checklist;
    return (this.session.materials || []).map((m) => ({ key: m.kind, kind: m.kind, name_zh: m.name_zh, name_en: m.name_en, required: m.required, state: "missing" }));
  }

  _renderSlots() {
    if (!this.session) return;
    this.slotsEl.replaceChildren(...this._slotList().map((slot) => this._slot(slot)));
  }

  _slot(slot) {
    const result = this.shown[slot.key];
    const capture = h("button", {
      type: "button", class: result ? "secondary" : "primary", dataset: { slot: slot.key, action: "capture" },
      disabled: !this.case, onclick: () => this._capture(slot, capture),
    }, result ? t("recapture") : t("capture"));
    const waive = slot.required && !result && slot.state !== "waived"
      ? h("button", { type: "button", class: "secondary", dataset: { slot: slot.key, action: "waive" }, disabled: !this.case, onclick: () => this._waive(slot) }, t("waive"))
      : null;
    return h("li", { class: "slot", dataset: { slot: slot.key, state: slot.state || "" } },
      h("span", { class: "name" }, pick(slot), slot.required ? h("em", {}, t("required_mark")) : null,
        slot.state === "waived" ? h("em", { class: "waived" }, `${t("waived")}：${slot.waived_reason}`) : null),
      h("span", { class: "slot-actions" }, waive, capture),
      result ? h("div", { class: "result" },
        this._image(result, pick(slot)),
        h("div", {}, h("div", { class: `verdict ${result.verdict}` }, t(`verdict_${result.verdict}`)),
          ...result.prompts.map((p) => h("div", { class: "small" }, pick(p, ""))))) : null);
  }

  async _capture(slot, button) {
    button.disabled = true;
    button.textContent = t("capturing");
    this.capturing.add(slot.key);
    try {
      const doc = (await this._uploaded(slot.key)) || (await this._snapshot(slot.key));
      this._remember(doc);
      this._renderSlots();
      // The photo first, then the checklist's new state.
      await this._image(this.shown[doc.slot], pick(slot)).decode().catch(() => {});
      this._loaded(await this.client.get(this.case.case_id));
    } catch (err) {
      toast(serverText(err.message) || t("error_generic"), { kind: "error" });
      this._renderSlots();
    } finally {
      this.capturing.delete(slot.key);
    }
  }

  /**
   * The full-resolution path: the citizen's page takes a still of its document camera and
   * uploads it; its case.document event brings it here. Null if it does not come in time
   * (an old page, a camera without stills, a failed upload): then the stream snapshot.
   */
  async _uploaded(slot) {
    if (!this.requestStill) return null;
    let settle;
    const arrived = new Promise((resolve) => (settle = resolve));
    let timer = setTimeout(() => settle(null), REPLY_WAIT_MS);
    // The page's reply (a still is coming, or not) and then its document, for this slot.
    this.waiting.set(slot, {
      reply: (ok) => {
        clearTimeout(timer);
        if (!ok) return settle(null);
        timer = setTimeout(() => settle(null), UPLOAD_WAIT_MS);
      },
      document: (event) => settle(event),
    });
    try {
      const ack = await this.requestStill(this.session.session_id, slot);
      this.waiting.get(slot).requestId = ack.request_id;
      if (this.early.has(ack.request_id)) this.waiting.get(slot).reply(this.early.get(ack.request_id));
      this.early.delete(ack.request_id);
    } catch {
      settle(null);
    }
    const event = await arrived;
    clearTimeout(timer);
    this.waiting.delete(slot);
    if (!event) return null;
    return {
      document_id: event.document_id, slot: event.slot,
      processed: { url: `/api/cases/${event.case_id}/documents/${event.document_id}/processed` },
      quality: { verdict: event.verdict, prompt_texts: event.prompts || [] },
    };
  }

  /** The citizen page's capture.reply to one of our requests. */
  captureReply(reply) {
    for (const waiter of this.waiting.values()) {
      if (waiter.requestId === reply.request_id) return waiter.reply(reply.ok);
    }
    this.early.set(reply.request_id, reply.ok); // before our request's ack
  }

  /** The stream path: the server grabs a keyframe of the citizen's document camera
   * (a booth's is its second video track; a phone has one camera). */
  _snapshot(slot) {
    const track = this.session.channel === "kiosk" ? 1 : 0;
    return this.client.snapshot(this.case.case_id, slot, track);
  }

  async _waive(slot) {
    const reason = prompt(t("waive_reason", { name: pick(slot) }));
    if (!reason || !reason.trim()) return;
    try {
      this._loaded(await this.client.waive(this.case.case_id, slot.key, reason.trim()));
    } catch (err) {
      toast(serverText(err.message), { kind: "error" });
    }
  }

  /** The server's case.document push (a capture from this or another tab, an upload). */
  async documentAdded(event) {
    if (!this.case || event.case_id !== this.case.case_id) return;
    const waiter = this.waiting.get(event.slot);
    if (waiter && event.path === "upload") return waiter.document(event);
    if (this.capturing.has(event.slot)) return;
    if (this.shown[event.slot] && this.shown[event.slot].document_id === event.document_id) return;
    try {
      this._loaded(await this.client.get(this.case.case_id));
    } catch {
      /* the next action reloads it */
    }
  }

  _renderForm() {
    const field = (key, input, hint) => h("label", {}, h("span", {}, t(key)), input, hint || null);
    this.form.replaceChildren(
      h("h3", {}, t("case_title"), " ", h("span", { class: "pill", id: "case-number" }, this.case ? this.case.number : "")),
      field("applicant_name", h("input", { id: "applicant-name", maxlength: 64 })),
      field("id_number", h("input", { id: "id-number", maxlength: 18, spellcheck: "false", oninput: () => this._checkId() }),
        h("span", { class: "hint", id: "id-hint" })),
      field("notes", h("textarea", { id: "notes", rows: 3, maxlength: 4000 })),
      field("outcome", h("select", { id: "outcome" }, h("option", { value: "" }, "—"),
        h("option", { value: "completed" }, t("outcome_completed")), h("option", { value: "rejected" }, t("outcome_rejected")))),
      field("outcome_note", h("input", { id: "outcome-note", maxlength: 2000 })),
      h("p", { class: "error", id: "case-error" }),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", id: "save-case", onclick: () => this._save(true) }, t("save_case")),
        h("button", { type: "button", class: "danger", id: "end-failed", onclick: () => this.onComplete("failed") }, t("end_failed")),
        h("button", { type: "button", class: "good", id: "complete", onclick: () => this._complete() }, t("complete"))),
    );
  }

  _checkId() {
    const value = $("#id-number", this.form).value;
    const hint = $("#id-hint", this.form);
    if (!value) {
      hint.textContent = "";
      hint.className = "hint";
      delete hint.dataset.verdict;
      return true;
    }
    const verdict = checkIdNumber(value);
    hint.textContent = t(`id_${verdict}`);
    hint.className = `hint ${verdict === "ok" ? "good" : "bad"}`;
    hint.dataset.verdict = verdict;
    return verdict === "ok";
  }

  _values() {
    const get = (id) => ($(`#${id}`, this.form) ? $(`#${id}`, this.form).value.trim() : "");
    return { applicant_name: get("applicant-name"), id_number: get("id-number").toUpperCase(), notes: get("notes"),
      outcome: get("outcome"), outcome_note: get("outcome-note") };
  }

  _setValues(v) {
    const set = (id, value) => {
      if ($(`#${id}`, this.form) && value != null) $(`#${id}`, this.form).value = value;
    };
    set("applicant-name", v.applicant_name);
    set("id-number", v.id_number);
    set("notes", v.notes);
    set("outcome", v.outcome);
    set("outcome-note", v.outcome_note);
    this._checkId();
  }

  _fillForm() {
    if (!this.case) return;
    this._setValues({ applicant_name: this.case.applicant_name, id_number: this.case.id_number, notes: this.case.notes,
      outcome_note: this.case.outcome });
  }

  _error(text, code) {
    const box = $("#case-error", this.form);
    box.textContent = text;
    if (code) box.dataset.code = code;
    else delete box.dataset.code;
  }

  async _save(announce) {
    this._error("");
    if (!this.case) return false;
    if (!this._checkId()) {
      this._error(t(`id_${checkIdNumber($("#id-number", this.form).value)}`), "id_number_invalid");
      return false;
    }
    const v = this._values();
    const changes = {};
    for (const name of ["applicant_name", "id_number"]) if (v[name] && v[name] !== (this.case[name] || "")) changes[name] = v[name];
    if (v.notes !== (this.case.notes || "")) changes.notes = v.notes;
    if (!Object.keys(changes).length) return true;
    try {
      this._loaded(await this.client.update(this.case.case_id, changes));
      if (announce) toast(t("saved"));
      return true;
    } catch (err) {
      this._error(serverText(err.message), err.code);
      return false;
    }
  }

  async _complete() {
    const v = this._values();
    if (!v.outcome) return this._error(t("need_outcome"), "outcome_required");
    if (!(await this._save(false))) return;
    try {
      const note = v.outcome_note || t(`outcome_${v.outcome}`);
      this._loaded(await this.client.setStatus(this.case.case_id, v.outcome, note));
    } catch (err) {
      return this._error(serverText(err.message), err.code);
    }
    this.onComplete("completed");
  }
}
