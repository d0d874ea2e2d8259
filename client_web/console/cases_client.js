// The clerk's HTTP calls on a case (docs/protocol.md, "Cases").

import { api } from "../lib/connection.js";

export class CasesClient {
  constructor(csrf) {
    this.csrf = csrf;
  }

  forSession(session) {
    return api(`/api/sessions/${encodeURIComponent(session.session_id)}/case`);
  }

  document(caseRecord, documentId) {
    return api(`/api/cases/${caseRecord.case_id}/documents/${documentId}`);
  }

  capture(caseRecord, session, slot) {
    return api(`/api/cases/${caseRecord.case_id}/captures`, {
      method: "POST", csrf: this.csrf, body: { slot, session_id: session.session_id },
    });
  }

  update(caseRecord, fields) {
    return api(`/api/cases/${caseRecord.case_id}`, { method: "PATCH", csrf: this.csrf, body: fields });
  }

  close(caseRecord, outcome) {
    return api(`/api/cases/${caseRecord.case_id}/close`, { method: "POST", csrf: this.csrf, body: { outcome } });
  }
}
