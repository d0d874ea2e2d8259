// Opening the cameras and microphone a page sends, and taking a full-resolution still.
//
// Booth: a face camera and a document camera. The document camera is the device whose
// label matches the booth setting (localStorage "xw:docCamera"), else the second video
// device; a booth with one camera sends it on both sections (the clerk still gets a
// document picture, just not a separate one). Phone: one camera, front or back.

const FACE = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15, max: 30 } };
const DOCUMENT = { width: { ideal: 1920 }, height: { ideal: 1080 }, frameRate: { ideal: 15, max: 30 } };

async function videoInputs() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices.filter((d) => d.kind === "videoinput");
}

export class BoothCameras {
  constructor() {
    this.face = null;
    this.document = null;
    this.audio = null;
    this.sharedCamera = false;
  }

  async open() {
    if (this.face) return this;
    const stream = await navigator.mediaDevices.getUserMedia({ video: FACE, audio: true });
    this.face = stream.getVideoTracks()[0];
    this.audio = stream.getAudioTracks()[0] || null;
    const inputs = await videoInputs();
    const wanted = localStorage.getItem("xw:docCamera");
    const faceId = this.face.getSettings().deviceId;
    const doc =
      inputs.find((d) => wanted && d.label.includes(wanted)) || inputs.find((d) => d.deviceId && d.deviceId !== faceId);
    if (doc) {
      try {
        const docStream = await navigator.mediaDevices.getUserMedia({ video: { ...DOCUMENT, deviceId: { exact: doc.deviceId } } });
        this.document = docStream.getVideoTracks()[0];
      } catch {
        this.document = null;
      }
    }
    if (!this.document) {
      this.document = this.face.clone();
      this.sharedCamera = true;
    }
    this.document.contentHint = "detail";
    this.face.contentHint = "motion";
    return this;
  }

  /** Sections for CallPeer: face (sent, receives the clerk), document (sent only), audio. */
  sections() {
    return [
      { kind: "video", track: this.face, direction: "sendrecv" },
      { kind: "video", track: this.document, direction: "sendonly", document: true },
      { kind: "audio", track: this.audio, direction: this.audio ? "sendrecv" : "recvonly" },
    ];
  }

  documentTrack() {
    return this.document;
  }

  close() {
    for (const track of [this.face, this.document, this.audio]) if (track) track.stop();
    this.face = this.document = this.audio = null;
  }
}

export class PhoneCamera {
  constructor() {
    this.video = null;
    this.audio = null;
    this.facing = "user";
  }

  async open(facing = this.facing) {
    if (this.video && this.facing === facing) return this;
    const constraints = { video: { ...FACE, facingMode: { ideal: facing } }, audio: !this.audio };
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    if (this.video) this.video.stop();
    this.video = stream.getVideoTracks()[0];
    if (!this.audio) this.audio = stream.getAudioTracks()[0] || null;
    this.facing = facing;
    return this;
  }

  /** Front <-> back: the back camera is for documents. Returns the new video track. */
  async flip() {
    await this.open(this.facing === "user" ? "environment" : "user");
    if (this.facing === "environment") this.video.contentHint = "detail";
    return this.video;
  }

  sections() {
    return [
      { kind: "video", track: this.video, direction: "sendrecv", document: true },
      { kind: "audio", track: this.audio, direction: this.audio ? "sendrecv" : "recvonly" },
    ];
  }

  documentTrack() {
    return this.video;
  }

  close() {
    for (const track of [this.video, this.audio]) if (track) track.stop();
    this.video = this.audio = null;
  }
}

/**
 * A still from a camera at its full resolution, as a JPEG Blob: ImageCapture where the
 * browser has it (the sensor's photo resolution), else the current frame of the track.
 */
export async function takeStill(track, quality = 0.92) {
  if (!track || track.readyState !== "live") throw new Error("camera not running");
  if (typeof ImageCapture !== "undefined") {
    try {
      const capture = new ImageCapture(track);
      const bitmap = await capture.grabFrame();
      return await bitmapToJpeg(bitmap, quality);
    } catch {
      /* fall through to a <video> frame */
    }
  }
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([track]);
  await video.play();
  await new Promise((resolve) => (video.requestVideoFrameCallback ? video.requestVideoFrameCallback(resolve) : setTimeout(resolve, 100)));
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  video.srcObject = null;
  return await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
}

async function bitmapToJpeg(bitmap, quality) {
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  return await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
}
