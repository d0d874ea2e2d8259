// The clerk's HTTP calls on a case (docs/protocol.md, "Cases").

import { api } from "../lib/connection.js";

function key() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

export class CasesClient {
  constructor(csrf) {
    this.csrf = csrf;
  }

  /** The case of the call (opened by the server at accept). */
  async forSession(session) {
    return (await api(`/api/sessions/${encodeURIComponent(session.session_id)}/case`)).case;
  }

  async get(caseId) {
    return (await api(`/api/cases/${caseId}`)).case;
  }

  /**
   * A still of the citizen's document camera from the live stream (a booth's document
   * camera is its second video track). Retries of one click reuse its Idempotency-Key.
   */
  async snapshot(caseId, slot, track) {
    const idempotency = key();
    const send = () => fetch(`/api/cases/${caseId}/snapshots`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": this.csrf, "Idempotency-Key": idempotency },
      body: JSON.stringify({ slot, source: "citizen", track }),
    });
    let response = await send().catch(() => null);
    if (!response) response = await send();
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = data.error || {};
      const err = new Error(error.message || response.statusText);
      err.code = error.code;
      throw err;
    }
    return data.document;
  }

  async update(caseId, fields) {
    return (await api(`/api/cases/${caseId}`, { method: "PATCH", csrf: this.csrf, body: fields })).case;
  }

  async waive(caseId, slot, reason) {
    return (await api(`/api/cases/${caseId}/slots/${encodeURIComponent(slot)}/waiver`, { method: "PUT", csrf: this.csrf, body: { reason } })).case;
  }

  async setStatus(caseId, status, outcome) {
    return (await api(`/api/cases/${caseId}/status`, { method: "POST", csrf: this.csrf, body: { status, outcome } })).case;
  }
}
