import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { fakeFetch, renderRoute, socketSending } from "../../test/render";
import RunView from "../RunView";

const AT = "2026-11-29T09:00:00Z";
const RUN = {
  id: "r1",
  project_id: "p1",
  mode: "full_search",
  parameters: { num_candidates: 3, num_scenarios: 2, seed_candidate_ids: [], budget_tokens: null, budget_usd: null, max_runtime_s: null, seed_candidates: [] },
  status: "COMPLETED",
  phases: ["design", "scenarios", "evaluate", "rank"],
  trigger: { id: "t1", source: "run_config_panel", metadata: {}, at: AT },
  ui_trigger_id: "t1",
  ui_trigger_source: "run_config_panel",
  ui_trigger_metadata: {},
  ui_triggered_at: AT,
  chat_session_id: "",
  recommended_message_id: "",
  recommended_config_snapshot: null,
  run_summary_message_id: "",
  counts: { candidates: 3, scenarios: 2, evaluations: 6, failed_evaluations: 0 },
  usage: { input_tokens: 1, output_tokens: 1, usd: 0.01, calls: 8, unpriced_calls: 0, failed_calls: 0 },
  failure_reason: "",
  error_summary: "",
  created_at: AT,
  started_at: AT,
  ended_at: "2026-11-29T09:00:02Z",
  duration_seconds: 2,
  trace_id: "",
  replay_of_run_id: "",
  snapshot_test_id: "",
};
// Designed in this order; ranked Canal, Tunnel, Ferry.
const DESIGNED = ["Ferry", "Tunnel", "Canal"];
const RANKED = ["Canal", "Tunnel", "Ferry"];

function evaluation(candidate: string, scenario: string) {
  return {
    id: `${candidate}-${scenario}`,
    run_id: "r1",
    candidate_id: candidate,
    scenario_id: scenario,
    status: "succeeded",
    P: { overall: 0.5, components: {} },
    R: { overall: 0.5, components: {} },
    constraint_satisfaction: [],
    explanation: "",
    failure_reason: "",
    raw_answer: "",
    llm_call_id: "",
    created_at: AT,
  };
}

afterEach(() => vi.unstubAllGlobals());

describe("RunView's matrix", () => {
  it("lists the candidates best first once the run is ranked, as Results does", async () => {
    vi.stubGlobal(
      "fetch",
      fakeFetch({
        "GET /api/runs/r1": () => RUN,
        "GET /api/projects/p1": () => ({ id: "p1", title: "Crossing" }),
        "GET /api/runs/r1/candidates": () => ({
          candidates: DESIGNED.map((title) => ({ id: title, run_id: "r1", title, description: "", approach: "", assumptions: [], created_at: AT })),
          next_page_token: "",
        }),
        "GET /api/runs/r1/scenarios": () => ({
          scenarios: ["s1", "s2"].map((id) => ({ id, run_id: "r1", title: id, description: "", severity: "low", created_at: AT })),
          next_page_token: "",
        }),
        "GET /api/runs/r1/evaluations": () => ({
          evaluations: DESIGNED.flatMap((c) => ["s1", "s2"].map((s) => evaluation(c, s))),
          next_page_token: "",
        }),
        "GET /api/runs/r1/results": () => ({
          run_id: "r1",
          candidates: RANKED.map((title, index) => ({ candidate_id: title, title, rank: index + 1, I: 1, P: 0.5, R: 0.5, label: "promising", rejected: false, violated_constraints: [], evaluations: 2, failed_evaluations: 0 })),
        }),
      }).fetch,
    );
    renderRoute("/runs/r1?tab=matrix", "/runs/:runId", <RunView />);

    // Once the ranking is read, the key says so and the rows follow it.
    expect(await screen.findByText(/Candidates best first/)).toBeInTheDocument();
    const matrix = screen.getByRole("region", { name: "Results matrix" });
    const rows = within(matrix).getAllByRole("rowheader").map((cell) => cell.textContent);
    expect(rows).toEqual(RANKED);
    // The columns' scenarios in words, and the colours' key over this run's own range.
    const key = document.querySelector(".matrix-key");
    expect([...(key?.querySelectorAll("li") ?? [])].map((li) => li.textContent)).toEqual(["S1 s1", "S2 s2"]);
    expect(screen.getByLabelText("Colour key: P from 0.50 to 0.50")).toBeInTheDocument();
  });
});

describe("RunView of a run that runs", () => {
  const RUNNING = {
    ...RUN,
    status: "RUNNING",
    ended_at: null,
    duration_seconds: null,
    counts: { candidates: 3, scenarios: 2, evaluations: 2, failed_evaluations: 0 },
    usage: { ...RUN.usage, usd: 0, calls: 0 },
  };

  it("shows what it has spent so far, and cancels it only when asked twice", async () => {
    sessionStorage.clear();
    vi.stubGlobal(
      "WebSocket",
      socketSending([
        { type: "run.started", sequence: 1, run_id: "r1", data: {}, created_at: AT },
        { type: "phase.completed", sequence: 2, run_id: "r1", data: { phase: "design", usd_spent: 0.0123 }, created_at: AT },
      ]),
    );
    const api = fakeFetch({
      "GET /api/runs/r1": () => RUNNING,
      "GET /api/projects/p1": () => ({ id: "p1", title: "Crossing" }),
      "POST /api/runs/r1/cancel": () => ({ ...RUNNING, status: "CANCELLED", failure_reason: "cancelled: cancelled from the web UI" }),
    });
    vi.stubGlobal("fetch", api.fetch);
    renderRoute("/runs/r1", "/runs/:runId", <RunView />);

    // The design calls are paid before any evaluation says so; the counts are the run's so far.
    expect(await screen.findByText("$0.0123 so far")).toBeInTheDocument();
    expect(screen.getByText(/3 × 2 · 2 evaluations/)).toBeInTheDocument();
    expect(document.title).toBe("Run r1 · running · Crucible");

    await userEvent.click(screen.getByRole("button", { name: "Cancel run" }));
    expect(api.calls.some((c) => c.url === "/api/runs/r1/cancel")).toBe(false);
    // Asked, the focus is on the safe answer (the button it was on is gone).
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Keep it running" }));
    await userEvent.click(screen.getByRole("button", { name: "Cancel the run" }));

    expect(await screen.findByText("cancelled: cancelled from the web UI")).toBeInTheDocument();
    expect(api.calls.filter((c) => c.url === "/api/runs/r1/cancel").map((c) => c.body)).toEqual([{ reason: "cancelled from the web UI" }]);
    expect(screen.queryByRole("button", { name: "Cancel run" })).not.toBeInTheDocument();
  });
});
