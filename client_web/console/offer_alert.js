// The sound of an incoming offer: a two-tone chime every two seconds until answered.
// Generated with Web Audio (no sound file to fetch); the page title blinks too, for a
// console in a background tab.

export class OfferAlert {
  constructor() {
    this.timer = null;
    this.context = null;
    this.title = document.title;
  }

  start() {
    this.stop();
    const ring = () => {
      this._chime();
      document.title = document.title === this.title ? "● 新请求 New citizen" : this.title;
    };
    ring();
    this.timer = setInterval(ring, 2000);
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    document.title = this.title;
  }

  _chime() {
    try {
      this.context = this.context || new AudioContext();
      const ctx = this.context;
      if (ctx.state === "suspended") ctx.resume();
      const now = ctx.currentTime;
      for (const [freq, at] of [[880, 0], [660, 0.18]]) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, now + at);
        gain.gain.exponentialRampToValueAtTime(0.25, now + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, now + at + 0.16);
        osc.connect(gain).connect(ctx.destination);
        osc.start(now + at);
        osc.stop(now + at + 0.17);
      }
      this.rang = (this.rang || 0) + 1;
    } catch {
      /* no audio device: the blinking title and the card still show */
    }
  }
}
