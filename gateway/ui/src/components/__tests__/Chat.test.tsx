import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Schemas } from "../../api/client";
import { fakeFetch, renderWithProviders } from "../../test/render";
import { Chat } from "../Chat";

function message(id: string, role: "user" | "agent", content: string, metadata: object = {}): Schemas["ChatMessage"] {
  return { id, chat_session_id: "s1", sequence: 1, role, content, metadata, created_at: "2026-11-29T10:00:00Z" } as Schemas["ChatMessage"];
}

const SUMMARY = {
  run_id: "0123456789abcdef",
  project_id: "p1",
  mode: "full_search",
  status: "COMPLETED",
  started_at: "2026-11-29T10:00:00Z",
  completed_at: "2026-11-29T10:00:10Z",
  duration_seconds: 10,
  counts: { candidates: 2, scenarios: 2, evaluations: 4 },
  top_candidates: [],
  links: { results_view: "/runs/0123456789abcdef" },
  summary_label: "Run 01234567 summary",
};

afterEach(() => vi.unstubAllGlobals());

describe("Chat", () => {
  it("says who wrote each message: you, the Architect, or the run service for a run's summary", () => {
    vi.stubGlobal("fetch", fakeFetch({}).fetch);
    renderWithProviders(
      <Chat
        sessionId="s1"
        messages={[
          message("m1", "user", "A bridge, please."),
          message("m2", "agent", "Here is a ProblemSpec."),
          message("m3", "agent", "Run 01234567 finished.", { run_summary: SUMMARY }),
        ]}
        ensureSession={async () => "s1"}
        onUse={() => {}}
        activeSuggestion={null}
        onTurnDone={() => {}}
      />,
    );
    const authors = within(screen.getByRole("list", { name: "Messages" }))
      .getAllByRole("listitem")
      .map((item) => item.querySelector(".message-meta strong")?.textContent);
    expect(authors).toEqual(["You", "Architect", "Run service"]);
  });

  it("a message whose turn was cut short (a reload) is offered to be asked again, under its own id", async () => {
    vi.stubGlobal("fetch", fakeFetch({}).fetch);
    const sent: string[] = [];
    vi.stubGlobal(
      "WebSocket",
      class {
        onopen: (() => void) | null = null;
        onmessage: ((message: { data: string }) => void) | null = null;
        onclose: (() => void) | null = null;
        onerror: (() => void) | null = null;
        constructor() {
          setTimeout(() => this.onopen?.(), 0);
        }
        send(frame: string) {
          sent.push(frame);
        }
        close() {}
      },
    );
    renderWithProviders(
      <Chat
        sessionId="s1"
        messages={[message("m1", "user", "A bridge, please."), message("m2", "agent", "Here it is."), message("m3", "user", "Cheaper?")]}
        ensureSession={async () => "s1"}
        onUse={() => {}}
        activeSuggestion={null}
        onTurnDone={() => {}}
      />,
    );
    expect(screen.getByText(/No reply to this message/)).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Ask again" }));

    await vi.waitFor(() => expect(sent).toHaveLength(1));
    expect(JSON.parse(sent[0] ?? "{}")).toEqual({ content: "Cheaper?", chat_message_id: "m3" });
    expect(screen.queryByRole("button", { name: "Ask again" })).not.toBeInTheDocument();
  });

  it("offers nothing when the last message was answered", () => {
    renderWithProviders(
      <Chat
        sessionId="s1"
        messages={[message("m1", "user", "A bridge, please."), message("m2", "agent", "Here it is.")]}
        ensureSession={async () => "s1"}
        onUse={() => {}}
        activeSuggestion={null}
        onTurnDone={() => {}}
      />,
    );
    expect(screen.queryByText(/No reply to this message/)).not.toBeInTheDocument();
  });
});
