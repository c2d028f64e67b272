import { describe, expect, it, vi } from "vitest";
import { closeSocket } from "../events";

/** Just what closeSocket touches of a browser WebSocket. */
function socketIn(readyState: number) {
  return {
    readyState,
    onopen: null as (() => void) | null,
    onmessage: (() => undefined) as (() => void) | null,
    close: vi.fn(),
  };
}

describe("closeSocket", () => {
  it("closes a socket that is still connecting only once it is open", () => {
    const socket = socketIn(0);
    closeSocket(socket as unknown as WebSocket);
    expect(socket.close).not.toHaveBeenCalled();
    expect(socket.onmessage).toBeNull();
    socket.onopen?.();
    expect(socket.close).toHaveBeenCalledTimes(1);
  });

  it("closes an open socket at once, its messages no longer handled", () => {
    const socket = socketIn(1);
    closeSocket(socket as unknown as WebSocket);
    expect(socket.close).toHaveBeenCalledTimes(1);
    expect(socket.onmessage).toBeNull();
  });

  it("does nothing without a socket", () => {
    expect(() => closeSocket(null)).not.toThrow();
  });
});
