// The citizen page's part in the case file: which case the call belongs to, the
// full-resolution still the clerk asked for, and the rating.
// Routes: docs/protocol.md ("Cases").

import { api } from "./connection.js";

export class CaseLink {
  constructor({ token }) {
    this.token = token;
  }

  /** The case of a session: from the case.opened event, else asked for. */
  async caseOf(sessionId, known) {
    if (known && known.session_id === sessionId) return known;
    const body = await api(`/api/sessions/${encodeURIComponent(sessionId)}/case`, { token: this.token });
    return body.case;
  }

  rate(caseId, score, reason) {
    return api(`/api/cases/${caseId}/rating`, {
      method: "POST", token: this.token, body: { score, reason: reason || null },
    });
  }

  /** Upload a still for a slot; the same key on a retry answers with the first upload. */
  upload(caseId, slot, blob, idempotencyKey) {
    const form = new FormData();
    form.append("slot", slot);
    form.append("file", blob, `${slot}.jpg`);
    return fetch(`/api/cases/${caseId}/documents`, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.token}`, "Idempotency-Key": idempotencyKey },
      body: form,
    });
  }
}
