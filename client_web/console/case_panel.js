// The case panel of a call: one capture button per checklist slot (showing the processed
// photo and its quality verdict), the applicant's fields with identity-number checking,
// notes and the outcome. The case itself lives on the server (docs/protocol.md, "Cases");
// CasesClient is the HTTP side of it.

import { h, $, toast } from "../lib/dom.js";
import { t, pick, serverText } from "../lib/i18n.js";
import { checkIdNumber } from "../lib/id_number.js";
import { CasesClient } from "./cases_client.js";

const OUTCOMES = ["approved", "rejected", "incomplete", "referred"];

export class CasePanel {
  constructor({ form, slots, csrf, onComplete }) {
    this.form = form;
    this.slotsEl = slots;
    this.client = new CasesClient(csrf);
    this.onComplete = onComplete;
    this.session = null;
    this.case = null;
    this.results = {};
  }

  async open(session) {
    this.session = session;
    this.results = {};
    this.case = null;
    this._renderForm();
    this._renderSlots();
    try {
      this.case = await this.client.forSession(session);
      this._fillForm();
      for (const doc of this.case.documents || []) this._showDocument(doc);
      this._renderSlots();
    } catch (err) {
      toast(serverText(err.message), { kind: "error" });
    }
  }

  close() {
    this.session = null;
    this.case = null;
    this.results = {};
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

  /** Slots: the case's checklist once loaded, the matter's materials before. */
  _slotList() {
    if (this.case && this.case.checklist) return this.case.checklist;
    return (this.session.materials || []).map((m) => ({ key: m.kind, kind: m.kind, name_zh: m.name_zh, name_en: m.name_en, required: m.required }));
  }

  _renderSlots() {
    if (!this.session) return;
    this.slotsEl.replaceChildren(
      ...this._slotList().map((slot) => {
        const result = this.results[slot.key];
        const button = h("button", {
          type: "button", class: result ? "secondary" : "primary", dataset: { slot: slot.key },
          onclick: () => this._capture(slot, button),
        }, result ? t("recapture") : t("capture"));
        return h("li", { class: "slot", dataset: { slot: slot.key } },
          h("span", { class: "name" }, pick(slot), slot.required ? h("em", {}, t("required_mark")) : null),
          button,
          result ? h("div", { class: "result" },
            h("img", { src: result.url, alt: pick(slot), dataset: { document: result.document_id } }),
            h("div", {}, h("div", { class: `verdict ${result.verdict}` }, t(`verdict_${result.verdict}`)),
              ...(result.prompts || []).map((p) => h("div", { class: "small" }, typeof p === "string" ? p : pick(p, "text"))))) : null);
      }),
    );
  }

  async _capture(slot, button) {
    button.disabled = true;
    button.textContent = t("capturing");
    try {
      const doc = await this.client.capture(this.case, this.session, slot.key);
      this._showDocument(doc);
    } catch (err) {
      toast(serverText(err.message) || t("error_generic"), { kind: "error" });
    } finally {
      this._renderSlots();
    }
  }

  _showDocument(doc) {
    const quality = doc.quality || {};
    this.results[doc.slot] = {
      document_id: doc.document_id,
      url: doc.processed ? doc.processed.url : doc.url,
      verdict: quality.verdict || doc.verdict || "ok",
      prompts: quality.prompt_texts || doc.prompts || [],
    };
    this._renderSlots();
  }

  /** The server's push after any capture of this case (also ones made from another tab). */
  captureResult(event) {
    if (!this.case || event.case_id !== this.case.case_id) return;
    this.client.document(this.case, event.document_id).then((doc) => this._showDocument(doc)).catch(() => {});
  }

  _renderForm() {
    const field = (id, key, input, hint) => h("label", {}, h("span", {}, t(key)), input, hint || null);
    const idHint = h("span", { class: "hint", id: "id-hint" });
    const idInput = h("input", { id: "id-number", maxlength: 18, inputmode: "text", spellcheck: "false",
      oninput: () => this._checkId() });
    this.form.replaceChildren(
      h("h3", {}, t("case_title"), h("span", { class: "pill", id: "case-number" }, this.case ? this.case.number : "")),
      field("applicant-name", "applicant_name", h("input", { id: "applicant-name", maxlength: 64 })),
      field("id-number", "id_number", idInput, idHint),
      field("phone", "phone", h("input", { id: "phone", maxlength: 20, inputmode: "tel" })),
      field("notes", "notes", h("textarea", { id: "notes", rows: 3, maxlength: 2000 })),
      field("outcome", "outcome", h("select", { id: "outcome" }, h("option", { value: "" }, "—"),
        ...OUTCOMES.map((o) => h("option", { value: o }, t(`outcome_${o}`))))),
      h("p", { class: "error", id: "case-error" }),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", id: "save-case", onclick: () => this._save() }, t("save_case")),
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
    return { applicant_name: get("applicant-name"), id_number: get("id-number").toUpperCase(), phone: get("phone"), notes: get("notes"), outcome: get("outcome") };
  }

  _setValues(v) {
    const set = (id, value) => {
      if ($(`#${id}`, this.form) && value != null) $(`#${id}`, this.form).value = value;
    };
    set("applicant-name", v.applicant_name);
    set("id-number", v.id_number);
    set("phone", v.phone);
    set("notes", v.notes);
    set("outcome", v.outcome);
    this._checkId();
  }

  _fillForm() {
    if (!this.case) return;
    $("#case-number", this.form).textContent = this.case.number || "";
    this._setValues(this.case);
  }

  async _save() {
    $("#case-error", this.form).textContent = "";
    if (!this._checkId()) {
      $("#case-error", this.form).textContent = t("id_check_digit");
      return false;
    }
    try {
      this.case = await this.client.update(this.case, this._values());
      toast(t("saved"));
      return true;
    } catch (err) {
      $("#case-error", this.form).textContent = serverText(err.message);
      $("#case-error", this.form).dataset.code = err.code;
      return false;
    }
  }

  async _complete() {
    const values = this._values();
    if (!values.outcome) {
      $("#case-error", this.form).textContent = t("need_outcome");
      return;
    }
    if (!(await this._save())) return;
    try {
      this.case = await this.client.close(this.case, values.outcome);
    } catch (err) {
      $("#case-error", this.form).textContent = serverText(err.message);
      $("#case-error", this.form).dataset.code = err.code;
      return;
    }
    this.onComplete("completed");
  }
}
