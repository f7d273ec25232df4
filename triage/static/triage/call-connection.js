/* The patient WebSocket (docs/protocol.md, version 1), with automatic reconnection.
 *
 * A dropped socket is reopened with the same token, with backoff, for as long as the server
 * keeps the call alive after a drop (60 s); the server then answers `ready` with
 * `resumed: true` and the call carries on. Closes that mean "stop" (unknown or ended
 * session, the patient ended the call) are not retried. A close that names a server (4421: it
 * holds the call; 4422: it holds a free line for this waiting caller) is followed: the
 * reconnect carries `?node=<name>`, which the load balancer routes by (deploy/haproxy.cfg).
 */
(function () {
  "use strict";

  const GRACE_MS = 60000; // the server keeps a dropped call this long
  const BACKOFF_MS = [250, 500, 1000, 2000, 4000];
  const PING_EVERY_MS = 10000;
  const DEAD_AFTER_MS = 25000; // no answer to pings this long: treat the socket as dead
  const MAX_BUFFERED_BYTES = 32000; // 1 s of audio; beyond that the network is stalled: drop audio

  // Close codes the server uses (docs/protocol.md §4); these are not retried.
  const FINAL_CLOSES = {
    4404: "session_not_found",
    4410: "session_ended",
    4500: "models_unavailable",
  };
  const IN_USE = 4409;
  const DRAINING = 4503;
  const LINE_FREE_ELSEWHERE = 4422; // a line is held for us on the named server: go at once
  const CALL_ELSEWHERE = 4421; // another server holds the call; retry_ms: when its lease lapses

  class CallConnection {
    constructor({ url, protocol, onMessage, onAudio, onStatus }) {
      this.url = url;
      this.protocol = protocol;
      this.onMessage = onMessage;
      this.onAudio = onAudio;
      this.onStatus = onStatus;
      this.ws = null;
      this.ready = false;
      this.finished = false;
      this.attempt = 0;
      this.droppedAt = null;
      this.retryTimer = null;
      this.pingTimer = null;
      this.lastHeard = 0;
      this.lastError = null;
      this.node = null; // the server named by the last 4421/4422 (sent as ?node=)
      this.stats = { connects: 0, reconnects: 0, audioFramesSent: 0, audioFramesDropped: 0, errors: [] };
      window.addEventListener("online", () => {
        if (this.droppedAt !== null && !this.ws) this.open();
      });
    }

    open() {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.ready = false;
      this.onStatus(this.droppedAt === null ? "connecting" : "reconnecting", { attempt: this.attempt });
      let ws;
      try {
        ws = new WebSocket(this.node ? `${this.url}?node=${encodeURIComponent(this.node)}` : this.url);
      } catch (err) {
        this.scheduleRetry();
        return;
      }
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      ws.onopen = () => {
        this.stats.connects += 1;
        this.lastHeard = Date.now();
        ws.send(JSON.stringify({ type: "hello", protocol: this.protocol }));
      };
      ws.onmessage = (event) => {
        this.lastHeard = Date.now();
        if (typeof event.data !== "string") {
          this.onAudio(event.data);
          return;
        }
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch (err) {
          return;
        }
        if (msg.type === "ready") {
          this.ready = true;
          // Liveness pings only once the call is up: before `ready` the server may still be
          // loading the voice models and cannot answer.
          this.startPings();
          if (this.droppedAt !== null) this.stats.reconnects += 1;
          this.droppedAt = null;
          this.attempt = 0;
          this.onStatus("ready", { resumed: msg.resumed });
        } else if (msg.type === "error") {
          this.lastError = msg;
          if (msg.node) this.node = msg.node;
          this.stats.errors.push(msg.code);
        } else if (msg.type === "ended") {
          this.finished = true;
        }
        this.onMessage(msg);
      };
      ws.onclose = (event) => this.closed(ws, event);
    }

    closed(ws, event) {
      if (ws !== this.ws) return;
      this.ws = null;
      this.ready = false;
      this.stopPings();
      if (this.finished) {
        this.onStatus("closed", { code: event.code, reason: "ended" });
        return;
      }
      if (FINAL_CLOSES[event.code]) {
        this.finished = true;
        this.onStatus("closed", { code: event.code, reason: FINAL_CLOSES[event.code], error: this.lastError });
        return;
      }
      // 4409: the server still holds our previous socket (it has not noticed the drop yet);
      // anything else is a network drop. Both: retry within the grace period.
      if (this.droppedAt === null) this.droppedAt = Date.now();
      if (event.code === DRAINING) this.node = null; // that server takes no new calls: any ready one
      this.onStatus("dropped", { code: event.code, inUse: event.code === IN_USE });
      if (event.code === LINE_FREE_ELSEWHERE) {
        this.open(); // not a failure: the line is held for us for a few seconds only
        return;
      }
      // A dead owner's call can be taken as soon as its lease lapses: never wait past that.
      const lapse = event.code === CALL_ELSEWHERE && this.lastError ? this.lastError.retry_ms : undefined;
      this.scheduleRetry(typeof lapse === "number" ? lapse + 100 : undefined);
    }

    scheduleRetry(notAfterMs) {
      if (Date.now() - this.droppedAt > GRACE_MS) {
        this.finished = true;
        this.onStatus("closed", { code: 1006, reason: "connection_lost" });
        return;
      }
      let delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      if (notAfterMs !== undefined) delay = Math.min(delay, notAfterMs);
      this.attempt += 1;
      this.onStatus("reconnecting", { attempt: this.attempt, inMs: delay });
      this.retryTimer = setTimeout(() => this.open(), delay);
    }

    startPings() {
      this.stopPings();
      this.pingTimer = setInterval(() => {
        if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
        if (Date.now() - this.lastHeard > DEAD_AFTER_MS) {
          this.ws.close(4000, "no answer");
          return;
        }
        this.send({ type: "ping", t: Date.now() });
      }, PING_EVERY_MS);
    }

    stopPings() {
      clearInterval(this.pingTimer);
      this.pingTimer = null;
    }

    send(message) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify(message));
        return true;
      }
      return false;
    }

    /* Microphone audio is only useful live: while not ready (or stalled) it is dropped, not queued. */
    sendAudio(buffer) {
      const ws = this.ws;
      if (!ws || !this.ready || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        this.stats.audioFramesDropped += 1;
        return false;
      }
      ws.send(buffer);
      this.stats.audioFramesSent += 1;
      return true;
    }

    /* The patient ends the call: the server answers `ended` and closes. */
    end() {
      if (!this.send({ type: "end" })) {
        this.finished = true;
        clearTimeout(this.retryTimer);
        this.onStatus("closed", { code: 1000, reason: "patient_ended" });
        return;
      }
      this.finished = true;
      const ws = this.ws;
      setTimeout(() => {
        if (ws && ws.readyState !== WebSocket.CLOSED) ws.close(1000);
      }, 3000);
    }

    /* Test hook: drop the socket as a network failure would (the call must resume). */
    drop() {
      if (this.ws) this.ws.close(4001, "simulated drop");
    }
  }

  window.TriageConnection = { CallConnection };
})();
