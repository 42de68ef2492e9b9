// A ring sound, made with WebAudio (no audio file, nothing the Content-Security-Policy has
// to allow).  On by default; the choice is kept in localStorage.  Browsers let a page
// play sound only after someone clicked or typed on it, so the audio context is resumed
// on the first such gesture.

const STORED = "cidbridge.sound";
let context = null;

export function soundOn() {
  return localStorage.getItem(STORED) !== "off";
}

export function setSound(on) {
  localStorage.setItem(STORED, on ? "on" : "off");
  if (on) audio();
}

function audio() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  if (!context) context = new Context();
  if (context.state === "suspended") context.resume().catch(() => {});
  return context;
}

for (const gesture of ["pointerdown", "keydown"]) {
  window.addEventListener(gesture, () => { if (soundOn()) audio(); }, { once: true, capture: true });
}

/** Two short two-tone bursts, like a desk phone; nothing when the sound is off. */
export function ring() {
  // Before anyone clicked or typed on the page the browser would refuse (and warn).
  if (!soundOn() || navigator.userActivation?.hasBeenActive === false) return;
  const ctx = audio();
  if (!ctx) return;
  const start = ctx.currentTime + 0.02;
  for (const [offset, frequency] of [[0, 880], [0.12, 660], [0.4, 880], [0.52, 660]]) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.25, start + offset + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.11);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start + offset);
    osc.stop(start + offset + 0.12);
  }
}
