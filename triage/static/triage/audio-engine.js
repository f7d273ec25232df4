/* Audio for the patient page: one AudioContext with two worklets.
 *   microphone -> pcm-capture (16 kHz s16le, 20 ms frames) -> onFrame(ArrayBuffer, rms, t)
 *   agent PCM  -> pcm-playback (ring buffer)               -> speakers
 * Times are AudioContext seconds, the one clock both worklets share.
 */
(function () {
  "use strict";

  const MIC_CONSTRAINTS = {
    audio: {
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
      channelCount: 1,
    },
    video: false,
  };

  class AudioEngine {
    constructor({ captureUrl, playbackUrl, onFrame, onPlaybackEvent }) {
      this.captureUrl = captureUrl;
      this.playbackUrl = playbackUrl;
      this.onFrame = onFrame;
      this.onPlaybackEvent = onPlaybackEvent;
      this.context = null;
      this.stream = null;
      this.capture = null;
      this.playback = null;
      this.outputRate = null;
      this.pendingFlush = null;
      this.modules = null;
    }

    static supported() {
      return Boolean(
        window.isSecureContext &&
          navigator.mediaDevices &&
          navigator.mediaDevices.getUserMedia &&
          window.AudioContext &&
          window.AudioWorkletNode
      );
    }

    /* Must be called from a user gesture (click), so the context may start playing. */
    createContext() {
      this.context = new AudioContext({ latencyHint: "interactive" });
      // Phones suspend audio when the page is hidden or a phone call comes in; resume on return.
      this.onVisible = () => {
        if (document.visibilityState === "visible" && this.context && this.context.state !== "closed")
          this.context.resume().catch(() => {});
      };
      document.addEventListener("visibilitychange", this.onVisible);
      return this.context.resume();
    }

    loadWorklets() {
      if (!this.modules) {
        const worklet = this.context.audioWorklet;
        this.modules = Promise.all([worklet.addModule(this.captureUrl), worklet.addModule(this.playbackUrl)]);
      }
      return this.modules;
    }

    async startMicrophone() {
      this.stream = await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
      const ctx = this.context;
      await this.loadWorklets();
      const source = ctx.createMediaStreamSource(this.stream);
      this.capture = new AudioWorkletNode(ctx, "pcm-capture", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        channelCount: 1,
        channelCountMode: "explicit",
        channelInterpretation: "speakers",
        processorOptions: { targetRate: 16000, frameMs: 20 },
      });
      this.capture.port.onmessage = (event) => {
        const m = event.data;
        if (m.type === "frame") this.onFrame(m.pcm, m.rms, m.t);
      };
      // The capture node outputs silence; connecting it keeps it rendering everywhere.
      source.connect(this.capture).connect(ctx.destination);
      const track = this.stream.getAudioTracks()[0];
      return track ? track.getSettings() : {};
    }

    /* (Re)build the playback node for the output rate the server announced in `ready`. */
    ensurePlayback(rate) {
      if (this.playback && this.outputRate === rate) return;
      if (this.playback) this.playback.disconnect();
      this.outputRate = rate;
      this.playback = new AudioWorkletNode(this.context, "pcm-playback", {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { sourceRate: rate, bufferSeconds: 60 },
      });
      this.playback.port.onmessage = (event) => {
        const m = event.data;
        if (m.type === "flushed" && this.pendingFlush) {
          const resolve = this.pendingFlush;
          this.pendingFlush = null;
          resolve(m);
        }
        this.onPlaybackEvent(m);
      };
      this.playback.connect(this.context.destination);
    }

    /* A live voice (a clinician): never more than maxMs behind (playback-worklet.js, "live"). */
    live(replyId, maxMs) {
      if (this.playback) this.playback.port.postMessage({ type: "live", id: replyId, maxMs });
    }

    play(replyId, pcm) {
      if (this.playback) this.playback.port.postMessage({ type: "audio", id: replyId, pcm }, [pcm]);
    }

    complete(replyId) {
      if (this.playback) this.playback.port.postMessage({ type: "complete", id: replyId });
    }

    /* Hold playback (keep the buffer) / play on from the same sample. */
    hold() {
      if (this.playback) this.playback.port.postMessage({ type: "hold" });
    }

    release() {
      if (this.playback) this.playback.port.postMessage({ type: "release" });
    }

    /* Stop now: the worklet empties its buffer before rendering the next quantum. */
    flush() {
      if (!this.playback) return Promise.resolve({ replies: [], t: this.now() });
      return new Promise((resolve) => {
        this.pendingFlush = resolve;
        this.playback.port.postMessage({ type: "flush" });
      });
    }

    now() {
      return this.context ? this.context.currentTime : 0;
    }

    get state() {
      return this.context ? this.context.state : "closed";
    }

    async close() {
      if (this.onVisible) document.removeEventListener("visibilitychange", this.onVisible);
      if (this.capture) this.capture.port.postMessage({ type: "stop" });
      if (this.stream) for (const track of this.stream.getTracks()) track.stop();
      this.stream = null;
      if (this.context && this.context.state !== "closed") await this.context.close();
    }
  }

  window.TriageAudio = { AudioEngine };
})();
