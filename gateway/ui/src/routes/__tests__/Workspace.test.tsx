import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Schemas } from "../../api/client";
import { fakeFetch, renderRoute } from "../../test/render";
import Workspace from "../Workspace";

function session(id: string, mode: "setup" | "analysis"): Schemas["ChatSession"] {
  return { id, project_id: "p1", title: mode, mode, message_count: 1, created_at: "2026-11-29T10:00:00Z", updated_at: "2026-11-29T10:00:00Z" } as Schemas["ChatSession"];
}

function message(id: string, sessionId: string, content: string): Schemas["ChatMessage"] {
  return { id, chat_session_id: sessionId, sequence: 1, role: "user", content, metadata: {}, created_at: "2026-11-29T10:00:00Z" } as Schemas["ChatMessage"];
}

afterEach(() => vi.unstubAllGlobals());

describe("Workspace", () => {
  it("a project whose only conversation is an analysis shows none in Setup, and sends Setup's first message to a setup session", async () => {
    const api = fakeFetch({
      "GET /api/projects/p1": () => ({ id: "p1", title: "Bridge", description: "" }),
      "GET /api/projects/p1/chat-sessions": () => ({ chat_sessions: [session("a1", "analysis")], next_page_token: "" }),
      "GET /api/chat-sessions/a1/messages": () => ({ chat_messages: [message("m1", "a1", "Which candidate did best?")], next_page_token: "" }),
      "GET /api/projects/p1/runs": () => ({ runs: [], next_page_token: "" }),
      "POST /api/projects/p1/chat-sessions": () => session("s1", "setup"),
    });
    vi.stubGlobal("fetch", api.fetch);
    // The turn's socket is not what this is about: one that never opens.
    vi.stubGlobal(
      "WebSocket",
      class {
        close() {}
      },
    );
    renderRoute("/projects/p1", "/projects/:projectId", <Workspace />);

    const messages = await screen.findByRole("list", { name: "Messages" });
    expect(await within(messages).findByText(/Describe your problem/)).toBeInTheDocument();
    expect(within(messages).queryByText("Which candidate did best?")).not.toBeInTheDocument();

    await userEvent.type(screen.getByRole("textbox", { name: /message/i }), "A bridge over the river{Enter}");
    const created = api.calls.find((c) => c.method === "POST" && c.url === "/api/projects/p1/chat-sessions");
    expect(created?.body).toMatchObject({ mode: "setup" });

    await userEvent.click(screen.getByRole("radio", { name: "Analysis" }));
    expect(await screen.findByText("Which candidate did best?")).toBeInTheDocument();
  });
});
