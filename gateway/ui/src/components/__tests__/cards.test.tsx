import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { recommendationOf, rejectionsOf, summaryOf, type RecommendedRunConfig, type RunSummary } from "../../api/metadata";
import { fakeFetch, renderWithProviders } from "../../test/render";
import { RecommendationCard } from "../RecommendationCard";
import { SummaryCard } from "../SummaryCard";

const RECOMMENDATION: RecommendedRunConfig = {
  version: 1,
  recommendation_id: "rec-1",
  project_id: "p",
  chat_session_id: "s",
  source_message_id: "m",
  generated_at: "2026-11-26T10:00:00Z",
  expires_at: "2026-11-26T10:15:00Z",
  status: "ready",
  mode: "full_search",
  parameters: { num_candidates: 5, num_scenarios: 8, budget_usd: null, seed_candidate_ids: [] },
  prerequisites: { problem_spec: true, world_model: true, seed_candidates: false },
  estimated_cost: { tokens: 120000, usd: 0.42 },
  rationale: "Five designs against eight scenarios covers the hard constraint.",
  notes: [],
  blockers: [],
  blocker_details: [],
  warnings: [],
  trace: null,
};

const READY = recommendationOf({ recommended_run_config: RECOMMENDATION })!;

const BLOCKED: RecommendedRunConfig = {
  ...RECOMMENDATION,
  recommendation_id: "rec-2",
  status: "blocked",
  parameters: { num_candidates: 3, num_scenarios: 5 },
  prerequisites: { problem_spec: false, world_model: false, seed_candidates: false },
  estimated_cost: { tokens: null, usd: null },
  rationale: "",
  blockers: ["missing_problem_spec", "missing_world_model"],
  blocker_details: [
    { code: "missing_problem_spec", message: "The project has no ProblemSpec yet.", field: "" },
    { code: "missing_world_model", message: "The project has no WorldModel yet.", field: "" },
  ],
};

describe("RecommendationCard", () => {
  it("shows mode, parameters, cost and rationale, and only fills the panel when used", async () => {
    const onUse = vi.fn();
    renderWithProviders(<RecommendationCard config={READY} onUse={onUse} active={false} />);

    expect(screen.getByText("Architect run recommendation")).toBeInTheDocument();
    expect(screen.getByText("ready")).toBeInTheDocument();
    expect(screen.getByText("full search")).toBeInTheDocument();
    expect(screen.getByText("5")).toBeInTheDocument();
    expect(screen.getByText("8")).toBeInTheDocument();
    expect(screen.getByText("$0.42 · 120,000 tokens")).toBeInTheDocument();
    expect(screen.getByText(/covers the hard constraint/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Run" })).not.toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Use these settings" }));
    expect(onUse).toHaveBeenCalledTimes(1);
  });

  it("says what blocks it in the API's words, and an unknown price is unpriced, not $0", () => {
    renderWithProviders(<RecommendationCard config={BLOCKED} onUse={() => {}} active={false} />);
    expect(screen.getByText("blocked")).toBeInTheDocument();
    expect(screen.getByText("The project has no ProblemSpec yet.")).toBeInTheDocument();
    expect(screen.getByText("The project has no WorldModel yet.")).toBeInTheDocument();
    expect(screen.getByText("unpriced")).toBeInTheDocument();
  });

  it("ignores metadata that is not a recommendation", () => {
    expect(recommendationOf({ architect: {} })).toBeNull();
    expect(recommendationOf({ recommended_run_config: "nonsense" })).toBeNull();
  });
});

afterEach(() => vi.unstubAllGlobals());

describe("SummaryCard", () => {
  const summary: RunSummary = {
    run_id: "0123456789abcdef",
    project_id: "p",
    mode: "full_search",
    status: "COMPLETED",
    started_at: "2026-11-26T10:00:00Z",
    completed_at: "2026-11-26T10:00:12.5Z",
    duration_seconds: 12.5,
    counts: { candidates: 5, scenarios: 8, evaluations: 40 },
    top_candidates: [
      { candidate_id: "a", label: "Suspension bridge", I: 1.8, P: 0.9, R: 0.5, notes: "promising; 8 evaluations" },
      { candidate_id: "b", label: "Ferry", I: 1.2, P: 0.6, R: 0.5, notes: "promising; 8 evaluations" },
      { candidate_id: "c", label: "Tunnel", I: 1.1, P: 0.55, R: 0.5, notes: "under_test; 8 evaluations" },
      { candidate_id: "d", label: "Ford", I: 0.5, P: 0.2, R: 0.4, notes: "weak; 8 evaluations" },
    ],
    links: { results_view: "/runs/0123456789abcdef" },
    summary_label: "Run 01234567 summary",
  };

  it("is read from a message's metadata, and anything else is not a summary", () => {
    expect(summaryOf({ run_summary: summary })).toBe(summary);
    expect(summaryOf({ run_summary: { run_id: 3 } })).toBeNull();
    expect(summaryOf({})).toBeNull();
  });

  it("is labelled as a post-run summary, shows counts and the top three, and links to the results", async () => {
    vi.stubGlobal(
      "fetch",
      fakeFetch({
        "GET /api/runs/0123456789abcdef": () => ({
          id: "0123456789abcdef",
          status: "COMPLETED",
          usage: { input_tokens: 900, output_tokens: 300, usd: 0.0111, calls: 42, unpriced_calls: 0, failed_calls: 0, cancelled_calls: 0 },
        }),
      }).fetch,
    );
    renderWithProviders(<SummaryCard summary={summary} />);
    // And its final cost, as the run's own account says it.
    expect(await screen.findByText(/12\.5 s · cost \$0\.0111/)).toBeInTheDocument();
    expect(screen.getByRole("region", { name: "Run 01234567 summary" })).toBeInTheDocument();
    expect(screen.getByText("Run 01234567 summary")).toBeInTheDocument();
    expect(screen.getByText("completed")).toBeInTheDocument();
    expect(screen.getByText(/5 candidates × 8 scenarios · 40 evaluations/)).toBeInTheDocument();
    expect(screen.getByText("Suspension bridge")).toBeInTheDocument();
    expect(screen.getByText("Tunnel")).toBeInTheDocument();
    expect(screen.queryByText("Ford")).not.toBeInTheDocument();
    expect(screen.getByText("1.80")).toBeInTheDocument();
    // The ranking label as the badge Results shows, the rest in words.
    const tunnel = screen.getByText("Tunnel").closest("td");
    expect(tunnel?.querySelector(".status")?.textContent).toBe("under test");
    expect(tunnel?.textContent).toContain("8 evaluations");
    expect(screen.getByRole("link", { name: "View results" })).toHaveAttribute("href", "/runs/0123456789abcdef");
    expect(screen.queryByRole("list", { name: "Rejected candidates" })).not.toBeInTheDocument();
  });

  it("names each rejected candidate and where it broke a hard constraint", () => {
    const metadata = {
      run_summary: summary,
      run_rejections: [
        {
          candidate_id: "e",
          title: "Gold bridge",
          evaluations: 8,
          violated_constraints: [
            { constraint: "budget", weight: 100, scenarios: 8 },
            { constraint: "safety", weight: 100, scenarios: 1 },
          ],
        },
        { nonsense: true },
        { candidate_id: "f", title: "Half a bridge", evaluations: 8, violated_constraints: [{ constraint: "budget" }] },
      ],
    };
    renderWithProviders(<SummaryCard summary={summaryOf(metadata)!} rejections={rejectionsOf(metadata)} />);
    const rejected = screen.getByRole("list", { name: "Rejected candidates" });
    expect(rejected).toHaveTextContent("Rejected: Gold bridge, broke budget in 8 of 8 scenarios; safety in 1 of 8 scenarios");
    expect(rejected.querySelectorAll("li")).toHaveLength(1);
    expect(rejectionsOf({ run_summary: summary })).toEqual([]);
  });
});
