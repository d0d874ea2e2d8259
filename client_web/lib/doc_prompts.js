// Live prompts while a citizen holds a document to the camera, before the clerk captures.
//
// A light, in-browser version of the server's quality checks (media/documents/quality.py),
// run twice a second on a small copy of what is inside the framing guide: glare (pixels
// near saturation and colourless), blur (the Crété-Roffet ratio the server uses: how much
// pixel-to-pixel variation survives a further box blur) and an empty guide (almost no
// variation at all). The prompt codes and texts are the server's, so what the citizen
// reads live is what a rejected capture would say. The server's verdict on the captured
// photo remains the one that counts.

import { addStrings, t } from "./i18n.js";

addStrings({
  prompt_ok: ["画面清晰，请保持不动", "The picture is clear: hold it there"],
  prompt_no_document: ["把证件放在取景框内", "Place the document in the frame"],
  prompt_document_cut_off: ["证件超出画面，请把整张证件放进取景框", "Part of the document is outside the frame"],
  prompt_too_close: ["离得太近了，请稍微拿远一点", "Too close: move the document a little away"],
  prompt_move_closer: ["证件太小，请靠近一些", "The document is too small: move it closer"],
  prompt_hold_still: ["画面模糊，请拿稳不动", "The picture is blurred: hold still"],
  prompt_avoid_glare: ["有反光，请稍微倾斜证件", "Glare on the document: tilt it slightly"],
});

const WIDTH = 240;
const MIN_SHARPNESS = 0.45; // lower than the server's 0.64: measured on a downscaled, unstraightened view
const MAX_GLARE = 0.08;
const MIN_ACTIVITY = 2.0; // mean |dI| below this: nothing but a plain surface in the guide

export function promptText(code) {
  return t(`prompt_${code}`);
}

/** Measures of an RGBA image (ImageData): {sharpness, glare, activity}. */
export function measure(image) {
  const { width, height, data } = image;
  const gray = new Float32Array(width * height);
  let glare = 0;
  for (let i = 0, p = 0; i < gray.length; i++, p += 4) {
    const r = data[p], g = data[p + 1], b = data[p + 2];
    const max = Math.max(r, g, b), min = Math.min(r, g, b);
    gray[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    if (max >= 250 && (max - min) * 255 < 40 * max) glare += 1;
  }
  let variation = 0, kept = 0;
  const k = 9;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let sum = 0;
    const blurred = new Float32Array(width);
    for (let x = 0; x < width; x++) {
      sum += gray[row + x];
      if (x >= k) sum -= gray[row + x - k];
      blurred[x] = sum / Math.min(x + 1, k);
    }
    for (let x = k; x < width; x++) {
      const d = Math.abs(gray[row + x] - gray[row + x - 1]);
      const db = Math.abs(blurred[x] - blurred[x - 1]);
      variation += d;
      kept += Math.max(0, d - db);
    }
  }
  const count = Math.max(1, height * (width - k));
  return {
    sharpness: variation > 0 ? kept / variation : 0,
    glare: glare / (width * height),
    activity: variation / count,
  };
}

export function promptFor(m) {
  if (m.activity < MIN_ACTIVITY) return "no_document";
  if (m.glare > MAX_GLARE) return "avoid_glare";
  if (m.sharpness < MIN_SHARPNESS) return "hold_still";
  return null;
}

/**
 * Watch a <video> showing the document camera; guide is the framing guide's box as
 * fractions of the picture {x, y, w, h}. Calls onPrompt(code|null) when it changes.
 * Returns stop().
 */
export function watchDocument(video, guide, onPrompt, intervalMs = 500) {
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  let last;
  const timer = setInterval(() => {
    if (!video.videoWidth || video.paused) return;
    const sx = guide.x * video.videoWidth, sy = guide.y * video.videoHeight;
    const sw = guide.w * video.videoWidth, sh = guide.h * video.videoHeight;
    canvas.width = WIDTH;
    canvas.height = Math.max(1, Math.round((WIDTH * sh) / sw));
    ctx.drawImage(video, sx, sy, sw, sh, 0, 0, canvas.width, canvas.height);
    const code = promptFor(measure(ctx.getImageData(0, 0, canvas.width, canvas.height)));
    if (code !== last) {
      last = code;
      onPrompt(code);
    }
  }, intervalMs);
  return () => clearInterval(timer);
}
