// The workspace's status changes over graphql-transport-ws, resumed from the last cursor after
// every reconnect (no gap, no duplicate), with exponential backoff between attempts.

import { createClient } from "./vendor/graphql-ws@6.4.2/client.js";
import { STATUS_CHANGED, errorFrom } from "./api.js";

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;
// Close codes after which the server expects the client back: going away / restart (1001, 1012),
// too slow (4429, with the last delivered cursor in its reason), abnormal closure (1006).
const QUICK_RETRY = new Set([1001, 1012]);

export function websocketUrl() {
  const url = new URL("graphql", document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function closeCode(error) {
  return typeof error?.code === "number" && "reason" in error ? error.code : null;
}

// What ended one connection: {kind: "fatal"|"expired"|"retry", code, message}.
function classify(error) {
  const code = closeCode(error);
  if (code === 4401 || code === 4403) {
    return {
      kind: "fatal",
      reason: "unauthenticated",
      message: error.reason || "The token was rejected.",
    };
  }
  if (code !== null) return { kind: "retry", code, message: error.reason || `closed (${code})` };
  if (Array.isArray(error)) error = errorFrom(error);
  if (error?.kind === "expired" || error?.kind === "input") {
    // A cursor past retention (or one this server does not know): start over from a snapshot.
    return { kind: "expired", message: error.message };
  }
  if (error?.kind === "unauthenticated" || error?.kind === "forbidden") {
    return { kind: "fatal", reason: error.kind, message: error.message };
  }
  return { kind: "retry", code: null, message: error?.message || "connection lost" };
}

export class LiveRuns {
  // handlers: onEvent(event), onState({state, retryInMs?, message?}), onFatal({reason, message}),
  // onExpired() -> Promise of the cursor to resume from after a fresh snapshot,
  // onConnected(resumedFrom)
  constructor({ token, workspaceId, cursor, handlers }) {
    this.token = token;
    this.workspaceId = workspaceId;
    this.cursor = cursor;
    this.handlers = handlers;
    this.stopped = false;
    this.wake = null;
    this.client = null;
  }

  start() {
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    this.client?.dispose();
    this.wake?.();
  }

  // Skips the current backoff wait (the browser came back online, the user asked).
  retryNow() {
    this.wake?.();
  }

  async loop() {
    let attempt = 0;
    let expiries = 0;
    while (!this.stopped) {
      this.handlers.onState({ state: attempt === 0 ? "connecting" : "reconnecting" });
      const { outcome, connected } = await this.connectOnce();
      if (this.stopped) return;
      if (outcome.kind === "fatal") {
        this.handlers.onFatal(outcome);
        return;
      }
      if (outcome.kind === "expired") {
        // The cursor is past retention: a fresh snapshot, then subscribe again right away; a
        // second refusal in a row waits like any failure (no hot loop).
        expiries += 1;
        this.handlers.onState({ state: "resyncing", message: outcome.message });
        try {
          this.cursor = await this.handlers.onExpired();
          if (expiries === 1) {
            attempt = 0;
            continue;
          }
        } catch (error) {
          if (error?.kind === "unauthenticated" || error?.kind === "forbidden") {
            this.handlers.onFatal({ reason: error.kind, message: error.message });
            return;
          }
        }
      } else if (connected) {
        attempt = 0;
        expiries = 0;
      }
      const delay = this.backoff(attempt, outcome.code);
      attempt += 1;
      this.handlers.onState({ state: "waiting", retryInMs: delay, message: outcome.message });
      await this.sleep(delay);
    }
  }

  backoff(attempt, code) {
    const base = attempt === 0 && QUICK_RETRY.has(code) ? 250 : BACKOFF_FIRST_MS * 2 ** attempt;
    const capped = Math.min(BACKOFF_MAX_MS, base);
    return Math.round(capped * (0.75 + Math.random() * 0.5));
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }

  connectOnce() {
    return new Promise((resolve) => {
      let connected = false;
      let settled = false;
      const resumedFrom = this.cursor;
      const client = createClient({
        url: websocketUrl(),
        connectionParams: { Authorization: `Bearer ${this.token}` },
        lazy: true,
        retryAttempts: 0,
        keepAlive: 10_000,
        connectionAckWaitTimeout: 10_000,
        on: {
          connected: () => {
            connected = true;
            this.handlers.onState({ state: "live" });
            this.handlers.onConnected?.(resumedFrom);
          },
        },
      });
      this.client = client;
      const finish = (outcome) => {
        if (settled) return;
        settled = true;
        this.client = null;
        client.dispose();
        resolve({ outcome, connected });
      };
      client.subscribe(
        {
          query: STATUS_CHANGED,
          variables: { workspaceId: this.workspaceId, after: this.cursor },
        },
        {
          next: (result) => {
            if (result.errors?.length) {
              finish(classify(errorFrom(result.errors)));
              return;
            }
            const event = result.data?.workflowRunStatusChanged;
            if (!event) return;
            this.cursor = event.cursor;
            this.handlers.onEvent(event);
          },
          error: (error) => finish(classify(error)),
          // The server ended the stream (it should not): resume like after a close.
          complete: () => finish({ kind: "retry", code: null, message: "stream ended" }),
        },
      );
    });
  }
}
