/* Microphone capture: whatever rate the AudioContext runs at -> 16 kHz s16le mono, 20 ms frames.
 *
 * Runs on the audio rendering thread. The input is low-pass filtered (windowed-sinc FIR below
 * the target Nyquist) and then resampled by linear interpolation, which is clean enough for
 * speech recognition and cheap. Every finished frame is posted (transferred) to the main
 * thread with its RMS level and the context time at its end, which the page uses for its
 * level meter and its own end-of-speech timing.
 */
class PcmCaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.targetRate = opts.targetRate || 16000;
    this.frameSamples = Math.round((this.targetRate * (opts.frameMs || 20)) / 1000);
    this.step = sampleRate / this.targetRate; // input samples per output sample
    this.taps = this.step > 1.0001 ? lowPass(0.45 / this.step, 2 * Math.ceil(8 * this.step) + 1) : null;
    this.history = new Float32Array(this.taps ? this.taps.length : 1);
    this.histPos = 0;
    this.prev = 0; // last filtered input sample (for interpolation across render quanta)
    this.pos = 0; // fractional read position, relative to `prev` (0 = prev, 1 = next input)
    this.frame = new Int16Array(this.frameSamples);
    this.fill = 0;
    this.sumSquares = 0;
    this.active = true;
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === "stop") this.active = false;
    };
  }

  filter(x) {
    if (!this.taps) return x;
    const h = this.history;
    const n = h.length;
    h[this.histPos] = x;
    let acc = 0;
    let j = this.histPos;
    for (let k = 0; k < n; k++) {
      acc += this.taps[k] * h[j];
      j = j === 0 ? n - 1 : j - 1;
    }
    this.histPos = this.histPos + 1 === n ? 0 : this.histPos + 1;
    return acc;
  }

  emit(sample) {
    const s = Math.max(-1, Math.min(1, sample));
    this.frame[this.fill++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    this.sumSquares += s * s;
    if (this.fill === this.frameSamples) {
      const rms = Math.sqrt(this.sumSquares / this.frameSamples);
      const buffer = this.frame.buffer;
      this.port.postMessage({ type: "frame", pcm: buffer, rms, t: currentTime }, [buffer]);
      this.frame = new Int16Array(this.frameSamples);
      this.fill = 0;
      this.sumSquares = 0;
    }
  }

  process(inputs, outputs) {
    if (!this.active) return false;
    const input = inputs[0];
    const channel = input && input[0];
    if (channel) {
      for (let i = 0; i < channel.length; i++) {
        // Down-mix is done by the browser (channelCount 1); filter, then step through.
        const cur = this.filter(channel[i]);
        while (this.pos <= 1) {
          this.emit(this.prev + (cur - this.prev) * this.pos);
          this.pos += this.step;
        }
        this.pos -= 1;
        this.prev = cur;
      }
    }
    // Output silence so the node stays pulled by the graph in every browser.
    const out = outputs[0];
    if (out) for (const ch of out) ch.fill(0);
    return true;
  }
}

/* Windowed-sinc (Blackman) low-pass; cutoff as a fraction of the input rate. */
function lowPass(cutoff, length) {
  const taps = new Float32Array(length);
  const mid = (length - 1) / 2;
  let sum = 0;
  for (let i = 0; i < length; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (length - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (length - 1));
    taps[i] = sinc * w;
    sum += taps[i];
  }
  for (let i = 0; i < length; i++) taps[i] /= sum;
  return taps;
}

registerProcessor("pcm-capture", PcmCaptureProcessor);
