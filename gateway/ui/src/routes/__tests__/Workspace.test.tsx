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

afterEach(() => {
  vi.unstubAllGlobals();
  sessionStorage.clear();
});

const RECOMMENDED = {
  version: 1,
  recommendation_id: "rec-1",
  project_id: "p1",
  chat_session_id: "s1",
  source_message_id: "m1",
  generated_at: "2026-11-29T10:00:00Z",
  expires_at: "2026-11-29T10:15:00Z",
  status: "ready",
  mode: "full_search",
  parameters: { num_candidates: 4, num_scenarios: 6 },
  prerequisites: { problem_spec: true, world_model: true, seed_candidates: false },
  estimated_cost: { tokens: 1000, usd: 0.01 },
  rationale: "Four designs against six scenarios.",
  notes: [],
  blockers: [],
  blocker_details: [],
  warnings: [],
  trace: null,
};

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

  it("the Run Config a user edited outlives a reload, and the recommendation then no longer says it is in the panel", async () => {
    const recommendation = { ...message("m2", "s1", "Try this."), role: "agent", metadata: { recommended_run_config: RECOMMENDED } };
    vi.stubGlobal(
      "fetch",
      fakeFetch({
        "GET /api/projects/p1": () => ({ id: "p1", title: "Bridge", description: "" }),
        "GET /api/projects/p1/chat-sessions": () => ({ chat_sessions: [session("s1", "setup")], next_page_token: "" }),
        "GET /api/chat-sessions/s1/messages": () => ({ chat_messages: [recommendation], next_page_token: "" }),
        "GET /api/projects/p1/runs": () => ({ runs: [], next_page_token: "" }),
      }).fetch,
    );
    const page = renderRoute("/projects/p1", "/projects/:projectId", <Workspace />);
    const card = await screen.findByRole("region", { name: /recommendation/i });
    expect(within(card).getByText("In the Run Config panel")).toBeInTheDocument();
    const candidates = screen.getByLabelText(/Candidates/);
    expect(candidates).toHaveValue("4");

    await userEvent.clear(candidates);
    await userEvent.type(candidates, "8");
    expect(within(card).queryByText("In the Run Config panel")).not.toBeInTheDocument();

    page.unmount();
    renderRoute("/projects/p1", "/projects/:projectId", <Workspace />);
    expect(await screen.findByLabelText(/Candidates/)).toHaveValue("8");
  });
});
