// The citizen page's part in the case file: consent to recording, the full-resolution
// still the clerk asked for, and the rating. Routes: docs/protocol.md ("Cases").

import { api } from "./connection.js";

export class CaseLink {
  constructor({ token }) {
    this.token = token;
  }

  consent(sessionId, granted) {
    return api(`/api/sessions/${encodeURIComponent(sessionId)}/consent`, {
      method: "POST", token: this.token, body: { granted },
    });
  }

  rate(sessionId, score, reason) {
    return api(`/api/sessions/${encodeURIComponent(sessionId)}/rating`, {
      method: "POST", token: this.token, body: { score, reason },
    });
  }
}
