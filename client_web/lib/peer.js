// The page's one WebRTC peer connection with the server's media endpoint.
//
// The page offers, the server answers (webrtc.offer -> "webrtc.answer" event). The
// server does not trickle, so the offer is sent once ICE gathering is complete. Each
// outgoing section is declared up front, even before the other side has joined, so
// forwarding starts by itself when it does. A section that receives carries the other
// participant's track of the same kind and index (n-th receiving video section = their
// n-th video track).
//
// After a network switch or a reload the page builds a *new* peer connection and
// offers again: the server replaces this participant's leg and keeps forwarding the
// other side's tracks, which is more robust than an ICE restart on a leg whose server
// end (and DTLS certificate) has been replaced.

const GATHER_TIMEOUT_MS = 3000;
const ANSWER_TIMEOUT_MS = 10000;
const RENEGOTIATE_AFTER_MS = 1000;
const START_BITRATE_KBPS = 800;

/** VP8 and H.264 (packetization-mode 1 only: the server's H.264 needs it), preferred order. */
export async function videoCodecPreferences({ preferH264 = null } = {}) {
  const caps = RTCRtpReceiver.getCapabilities ? RTCRtpReceiver.getCapabilities("video") : null;
  if (!caps) return null;
  const vp8 = caps.codecs.filter((c) => /vp8/i.test(c.mimeType));
  const h264 = caps.codecs.filter((c) => /h264/i.test(c.mimeType) && /packetization-mode=1/.test(c.sdpFmtpLine || ""));
  const rtx = caps.codecs.filter((c) => /rtx/i.test(c.mimeType));
  let h264First = preferH264;
  if (h264First === null) h264First = await lacksVp8Hardware();
  const main = h264First ? [...h264, ...vp8] : [...vp8, ...h264];
  return main.length ? [...main, ...rtx] : null;
}

/** True where encoding VP8 would be software-only but H.264 has hardware (most phones). */
async function lacksVp8Hardware() {
  if (!navigator.mediaCapabilities || !navigator.mediaCapabilities.encodingInfo) return false;
  const probe = (contentType) =>
    navigator.mediaCapabilities
      .encodingInfo({ type: "webrtc", video: { contentType, width: 640, height: 480, bitrate: 800000, framerate: 15 } })
      .catch(() => null);
  const [vp8, h264] = await Promise.all([probe("video/VP8"), probe("video/H264")]);
  return Boolean(vp8 && h264 && !vp8.powerEfficient && h264.powerEfficient);
}

/** Ask the sender to start high: aiortc's estimate otherwise starts Chromium low. */
function withStartBitrate(sdp) {
  const lines = sdp.split("\r\n");
  const videoPts = new Set();
  for (const line of lines) {
    const m = /^a=rtpmap:(\d+) (VP8|H264)\//i.exec(line);
    if (m) videoPts.add(m[1]);
  }
  return lines
    .map((line) => {
      const m = /^a=fmtp:(\d+) (.*)$/.exec(line);
      if (m && videoPts.has(m[1]) && !/x-google-start-bitrate/.test(line)) {
        return `${line};x-google-start-bitrate=${START_BITRATE_KBPS}`;
      }
      return line;
    })
    .join("\r\n");
}

export class CallPeer {
  /**
   * @param {object} o
   * @param {import("./connection.js").Connection} o.conn
   * @param {string} o.sessionId
   * @param {RTCIceServer[]} o.iceServers
   * @param {{kind: "audio"|"video", track: MediaStreamTrack|null, direction: string, document?: boolean}[]} o.sections
   * @param {(kind: string, index: number, stream: MediaStream) => void} o.onRemote
   * @param {(state: string) => void} [o.onState]
   * @param {boolean|null} [o.preferH264]
   */
  constructor({ conn, sessionId, iceServers, sections, onRemote, onState, preferH264 = null }) {
    this.conn = conn;
    this.sessionId = sessionId;
    this.iceServers = iceServers || [];
    this.sections = sections;
    this.onRemote = onRemote;
    this.onState = onState || (() => {});
    this.preferH264 = preferH264;
    this.pc = null;
    this.generation = 0;
    this.closed = false;
    this.pendingAnswer = null;
    this.offDone = conn.on("webrtc.answer", (data) => this._answered(data));
  }

  /** Negotiate (again): a fresh peer connection, an offer, the server's answer. */
  async start() {
    const generation = ++this.generation;
    if (this.pc) this.pc.close();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    this.pc = pc;
    const codecs = await videoCodecPreferences({ preferH264: this.preferH264 });
    const counts = { audio: 0, video: 0 };
    const receiving = { audio: [], video: [] };
    for (const section of this.sections) {
      const transceiver = pc.addTransceiver(section.track || section.kind, { direction: section.direction });
      if (section.kind === "video" && codecs && transceiver.setCodecPreferences) {
        try {
          transceiver.setCodecPreferences(codecs);
        } catch {
          /* the browser keeps its own order */
        }
      }
      if (section.direction.includes("recv")) receiving[section.kind].push(transceiver);
      section.transceiver = transceiver;
      counts[section.kind] += 1;
    }
    pc.ontrack = (event) => {
      const kind = event.track.kind;
      const index = receiving[kind].indexOf(event.transceiver);
      if (index >= 0 && generation === this.generation) this.onRemote(kind, index, new MediaStream([event.track]));
    };
    pc.onconnectionstatechange = () => {
      if (generation !== this.generation) return;
      this.onState(pc.connectionState);
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitForGathering(pc);
    if (generation !== this.generation || this.closed) return;
    const answered = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no answer from the server")), ANSWER_TIMEOUT_MS);
      this.pendingAnswer = { generation, resolve: (sdp) => (clearTimeout(timer), resolve(sdp)) };
    });
    await this.conn.call("webrtc.offer", { session_id: this.sessionId, type: "offer", sdp: pc.localDescription.sdp });
    const sdp = await answered;
    if (generation !== this.generation || this.closed) return;
    await pc.setRemoteDescription({ type: "answer", sdp: withStartBitrate(sdp) });
    await this._keepResolution();
  }

  /**
   * Negotiate until it works: after a failure (no answer, a refused offer) again every
   * second, until the session is gone or this peer is closed.
   */
  async negotiate() {
    if (this.closed) return;
    try {
      await this.start();
    } catch (err) {
      if (err && ["not_in_session", "session_gone"].includes(err.code)) return;
      if (!this.closed) setTimeout(() => this.negotiate(), RENEGOTIATE_AFTER_MS);
    }
  }

  /** Documents must stay sharp: drop frame rate, never resolution, under pressure. */
  async _keepResolution() {
    for (const section of this.sections) {
      if (section.kind !== "video" || !section.track) continue;
      const sender = section.transceiver.sender;
      try {
        const params = sender.getParameters();
        params.degradationPreference = section.document ? "maintain-resolution" : "balanced";
        await sender.setParameters(params);
      } catch {
        /* not supported here: the browser's default applies */
      }
    }
  }

  /** Swap a local track (e.g. front/back camera) without renegotiating. */
  async replaceTrack(index, track) {
    const section = this.sections[index];
    section.track = track;
    if (section.transceiver) await section.transceiver.sender.replaceTrack(track);
  }

  _answered(data) {
    if (!data || data.session_id !== this.sessionId || !this.pendingAnswer) return;
    const pending = this.pendingAnswer;
    if (pending.generation !== this.generation || !this.pc || this.pc.signalingState !== "have-local-offer") return;
    this.pendingAnswer = null;
    pending.resolve(data.sdp);
  }

  async stats() {
    if (!this.pc) return [];
    const report = await this.pc.getStats();
    return [...report.values()];
  }

  close() {
    this.closed = true;
    this.generation += 1;
    this.offDone();
    if (this.pc) this.pc.close();
    this.pc = null;
  }
}

function waitForGathering(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** Attach a stream to a <video>, muted or not, and make it play (WebViews need play()). */
export function showStream(video, stream, { muted = false } = {}) {
  video.muted = muted;
  video.playsInline = true;
  video.setAttribute("playsinline", "");
  video.autoplay = true;
  if (video.srcObject !== stream) video.srcObject = stream;
  const played = video.play();
  if (played && played.catch) played.catch(() => {
    // Autoplay with sound refused until the user touches the page: retry then.
    const retry = () => {
      video.play().catch(() => {});
      document.removeEventListener("pointerdown", retry);
    };
    document.addEventListener("pointerdown", retry);
  });
}
