/* Agent speech playback: a ring buffer of source-rate samples, played at the context's rate.
 *
 * Playback starts with the first chunk (no pre-buffering: the server already sends a little
 * ahead of real time). A "flush" message empties the buffer, so output is silent from the next
 * render quantum (one audio callback, 128 frames) on. The processor counts, per reply, how
 * many source samples actually went to the output, and reports that back:
 *   started  {id, t, arrived}   first sample of a reply played (t: context time; arrived: the
 *                               context time its first chunk reached this processor)
 *   progress {played, id, ms}   about every 50 ms while playing (played: total source samples)
 *   done     {id, ms}           a reply whose audio is complete has fully played
 *   flushed  {replies: [{id, ms}], t}   answer to flush
 * "hold" stops output at the next render quantum but keeps the buffer; "release" plays on
 * from the same sample (the server holds the agent while it judges speech over it).
 * "live" {id, maxMs} marks a reply as a live voice (a clinician on the call): it never lags by
 * more than maxMs (a backlog of earlier audio, network jitter). A chunk that would take the
 * buffer over maxMs is cut to its newest samples so the buffer holds maxMs / 2 (a lag that
 * stays at the bound would be kept for the rest of the call); what is cut counts in `dropped`.
 */
class PcmPlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    const opts = (options && options.processorOptions) || {};
    super();
    this.sourceRate = opts.sourceRate || 16000;
    this.step = this.sourceRate / sampleRate; // source samples per output sample
    this.capacity = Math.ceil(this.sourceRate * (opts.bufferSeconds || 60));
    this.ring = new Float32Array(this.capacity);
    this.read = 0; // index of the next source sample
    this.size = 0; // samples in the ring
    this.frac = 0; // fractional position between ring[read] and ring[read + 1]
    this.segments = []; // [{id, remaining}] in ring order: which reply each sample belongs to
    this.played = new Map(); // reply id -> source samples played
    this.complete = new Set(); // replies whose last chunk has arrived
    this.playedTotal = 0;
    this.overflowed = 0;
    this.lastProgress = 0;
    this.held = false;
    this.live = new Map(); // reply id -> the most source samples buffered ahead of its audio
    this.dropped = 0;
    this.arrived = new Map(); // reply id -> context time its first chunk arrived
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(msg) {
    switch (msg.type) {
      case "audio":
        this.push(msg.id, this.admit(msg.id, new Int16Array(msg.pcm)));
        break;
      case "live":
        this.live.set(msg.id, Math.round((this.sourceRate * msg.maxMs) / 1000));
        break;
      case "complete":
        this.complete.add(msg.id);
        this.finishDrained();
        break;
      case "flush":
        this.flush();
        break;
      case "hold":
        this.held = true;
        break;
      case "release":
        this.held = false;
        break;
    }
  }

  // A live voice's chunk keeps only what fits under its latency bound (its newest samples).
  admit(id, samples) {
    const max = this.live.get(id);
    if (max === undefined || this.size + samples.length <= max) return samples;
    const room = Math.max(0, Math.floor(max / 2) - this.size);
    this.dropped += samples.length - Math.min(room, samples.length);
    return samples.subarray(samples.length - Math.min(room, samples.length));
  }

  push(id, samples) {
    if (samples.length === 0) return;
    const room = this.capacity - this.size;
    const n = Math.min(room, samples.length);
    if (n < samples.length) this.overflowed += samples.length - n;
    let w = (this.read + this.size) % this.capacity;
    for (let i = 0; i < n; i++) {
      this.ring[w] = samples[i] / 32768;
      w = w + 1 === this.capacity ? 0 : w + 1;
    }
    this.size += n;
    const last = this.segments[this.segments.length - 1];
    if (last && last.id === id) last.remaining += n;
    else this.segments.push({ id, remaining: n });
    if (!this.played.has(id)) {
      this.played.set(id, 0);
      this.arrived.set(id, currentTime);
    }
  }

  ms(id) {
    return ((this.played.get(id) || 0) * 1000) / this.sourceRate;
  }

  flush() {
    const replies = [];
    const ids = new Set(this.segments.map((s) => s.id));
    for (const id of this.played.keys()) ids.add(id);
    for (const id of ids) replies.push({ id, ms: this.ms(id) });
    this.segments = [];
    this.size = 0;
    this.frac = 0;
    this.played.clear();
    this.arrived.clear();
    this.complete.clear();
    this.held = false;
    this.port.postMessage({ type: "flushed", replies, t: currentTime, playedTotal: this.playedTotal });
  }

  // Consume one source sample: attribute it to its reply.
  advance() {
    this.read = this.read + 1 === this.capacity ? 0 : this.read + 1;
    this.size -= 1;
    this.playedTotal += 1;
    const seg = this.segments[0];
    const before = this.played.get(seg.id) || 0;
    if (before === 0) {
      this.port.postMessage({ type: "started", id: seg.id, t: currentTime, arrived: this.arrived.get(seg.id) });
      this.arrived.delete(seg.id);
    }
    this.played.set(seg.id, before + 1);
    seg.remaining -= 1;
    if (seg.remaining === 0) {
      this.segments.shift();
      this.finishDrained();
    }
  }

  // Replies that are complete and have nothing left in the ring are done.
  finishDrained() {
    for (const id of this.complete) {
      if (!this.segments.some((s) => s.id === id)) {
        this.port.postMessage({ type: "done", id, ms: this.ms(id) });
        this.complete.delete(id);
        this.played.delete(id);
        this.live.delete(id);
      }
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (!this.held && i < out.length && this.size > 0) {
      const a = this.ring[this.read];
      const b = this.size > 1 ? this.ring[(this.read + 1) % this.capacity] : a;
      out[i++] = a + (b - a) * this.frac;
      this.frac += this.step;
      while (this.frac >= 1 && this.size > 0) {
        this.frac -= 1;
        this.advance();
      }
    }
    if (this.size === 0) this.frac = 0;
    for (; i < out.length; i++) out[i] = 0;
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (!this.held && currentTime - this.lastProgress >= 0.05 && (this.size > 0 || this.lastProgress >= 0)) {
      const seg = this.segments[0];
      this.port.postMessage({
        type: "progress",
        played: this.playedTotal,
        buffered: this.size,
        dropped: this.dropped,
        id: seg ? seg.id : null,
        ms: seg ? this.ms(seg.id) : 0,
      });
      this.lastProgress = this.size > 0 ? currentTime : -1; // one last report when it goes idle
    }
    return true;
  }
}

registerProcessor("pcm-playback", PcmPlaybackProcessor);
