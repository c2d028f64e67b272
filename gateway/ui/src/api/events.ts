/** The gateway's run and sprint event streams (their frames typed from the OpenAPI document). */
import { useEffect, useRef, useState } from "react";
import type { Schemas } from "./client";
import type { Problem } from "./problem";

/** A run or sprint event: `type` dotted ("evaluation.completed"), `data` per type. */
export type StreamEvent = Schemas["RunEventFrame"] | Schemas["SprintEventFrame"];
type ErrorFrame = Schemas["ErrorFrame"];

export function wsUrl(path: string): string {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}${path}`;
}

export type StreamState = "connecting" | "open" | "closed" | "error";

// WebSocket.CONNECTING, spelt out: a test's stand-in for the class need not define it.
const CONNECTING = 0;

/**
 * Leaves a stream: nothing it sends is handled any more, and it is closed — once open, if it is
 * still connecting (a page left at once), since closing it then makes the browser log "closed
 * before the connection is established" for every quick tab switch.
 */
export function closeSocket(socket: WebSocket | null): void {
  if (socket === null) return;
  socket.onmessage = null;
  if (socket.readyState === CONNECTING) {
    socket.onopen = () => socket.close();
  } else {
    socket.close();
  }
}

const RETRY_MS = 1500;

/**
 * Follows an event stream (`/api/ws/runs/{id}`, `/api/ws/sprints/{id}`) and hands each new event
 * to `onEvent`. A dropped connection reconnects with `?after=` the last sequence seen, so nothing
 * is missed or seen twice; the stream ends when the server closes it after the final event.
 */
export function useEventStream(
  path: string | null,
  after: number,
  onEvent: (event: StreamEvent) => void,
): { state: StreamState; problem: Problem | null } {
  const [state, setState] = useState<StreamState>("connecting");
  const [problem, setProblem] = useState<Problem | null>(null);
  const handler = useRef(onEvent);
  const lastSeen = useRef(after);

  useEffect(() => {
    handler.current = onEvent;
  }, [onEvent]);

  useEffect(() => {
    if (path === null) return;
    // A new stream starts where the caller says (a restored state's last event); a reconnect of
    // this one resumes from what it has seen since, hence `after` is read only here.
    lastSeen.current = after;
    let socket: WebSocket | null = null;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let ended = false;

    const connect = () => {
      setState("connecting");
      socket = new WebSocket(wsUrl(`${path}?after=${lastSeen.current}`));
      socket.onopen = () => setState("open");
      socket.onmessage = (message) => {
        const frame = JSON.parse(String(message.data)) as StreamEvent | ErrorFrame;
        // An event's type is any dotted name, so the error frame is told apart by its problem.
        if ("problem" in frame) {
          setProblem(frame.problem);
          setState("error");
          ended = true;
          return;
        }
        const event = frame;
        if (event.sequence <= lastSeen.current) return;
        lastSeen.current = event.sequence;
        handler.current(event);
      };
      socket.onclose = (close) => {
        if (stopped || ended) return;
        // 1000: the server closed a stream that has ended; anything else is a drop to resume.
        if (close.code === 1000) {
          setState("closed");
          return;
        }
        setState("connecting");
        retry = setTimeout(connect, RETRY_MS);
      };
    };
    connect();
    return () => {
      stopped = true;
      if (retry) clearTimeout(retry);
      closeSocket(socket);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path]);

  return { state, problem };
}
