// One socket.io connection to a role namespace, with acks as promises and resume.
//
// The server numbers every session event it sends to a participant ("seq"); this keeps
// the highest seen in sessionStorage, so after a dropped connection *or a reloaded page*
// the page sends session.resume {last_seq} and the server replays what was missed.
// socket.io's own reconnection (with backoff) brings the socket back after a network
// switch; "resumed" is dispatched with the server's snapshot once the replay is done.

import { io } from "/vendor/socket.io.esm.min.js";

export class XwError extends Error {
  constructor(code, message, detail) {
    super(message || code);
    this.code = code;
    this.detail = detail || {};
  }
}

export class Connection {
  /**
   * @param {string} namespace "/kiosk", "/citizen", "/clerk" or "/supervisor"
   * @param {{auth?: object, storageKey?: string}} options storageKey names where the
   *   seq counter lives (one per participant and tab).
   */
  constructor(namespace, { auth, storageKey } = {}) {
    this.namespace = namespace;
    this.storageKey = `xw:${storageKey || namespace}:seq`;
    this.lastSeq = Number(sessionStorage.getItem(this.storageKey) || 0);
    this.resumable = false;
    this.handlers = new Map();
    this.everConnected = false;
    this.socket = io(namespace, {
      auth,
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      reconnectionDelay: 300,
      reconnectionDelayMax: 2000,
      randomizationFactor: 0.3,
    });
    this.socket.onAny((event, data) => this._received(event, data));
    this.socket.on("connect", () => this._connected());
    this.socket.on("disconnect", (reason) => this._dispatch("status", { state: "offline", reason }));
    this.socket.on("connect_error", (err) => {
      const data = err && err.data ? err.data : {};
      this._dispatch("refused", { code: data.code || "connect_failed", message: data.message || String(err.message) });
    });
  }

  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(handler);
    return () => this.handlers.get(event).delete(handler);
  }

  /** Ask the server; resolves with the ack's result, rejects with an XwError. */
  call(event, payload = {}, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      this.socket.timeout(timeoutMs).emit(event, payload, (err, ack) => {
        if (err) return reject(new XwError("timeout", `${event}: no answer`));
        if (ack && ack.error) return reject(new XwError(ack.error.code, ack.error.message, ack.error.detail));
        resolve(ack || {});
      });
    });
  }

  /** From now on a reconnect resumes (the participant holds a ticket or a session). */
  setResumable(flag) {
    this.resumable = flag;
    if (!flag) this.resetSeq();
  }

  resetSeq() {
    this.lastSeq = 0;
    sessionStorage.removeItem(this.storageKey);
  }

  get connected() {
    return this.socket.connected;
  }

  close() {
    this.socket.close();
  }

  /** Drop the transport now and reconnect (what a network switch does); for testing. */
  bounce() {
    this.socket.io.engine.close();
  }

  async _connected() {
    this._dispatch("status", { state: "online", reconnect: this.everConnected });
    this.everConnected = true;
    if (!this.resumable) return;
    try {
      const ack = await this.call("session.resume", { last_seq: this.lastSeq });
      this._dispatch("resumed", ack);
    } catch (err) {
      this._dispatch("resumed", { error: err });
    }
  }

  _received(event, data) {
    if (data && typeof data.seq === "number" && data.seq > this.lastSeq) {
      this.lastSeq = data.seq;
      sessionStorage.setItem(this.storageKey, String(data.seq));
    }
    this._dispatch(event, data);
  }

  _dispatch(event, data) {
    for (const handler of this.handlers.get(event) || []) {
      try {
        handler(data);
      } catch (err) {
        console.error(`handler for ${event} failed`, err);
      }
    }
  }
}

/** JSON over HTTP with the same error shape as the socket acks. */
export async function api(path, { method = "GET", body, token, csrf, form } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let payload;
  if (form) payload = form;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  if (!response.ok) {
    const error = data.error || {};
    throw new XwError(error.code || `http_${response.status}`, error.message || response.statusText, error.detail);
  }
  return data;
}
