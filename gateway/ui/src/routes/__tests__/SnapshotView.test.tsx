import { screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Schemas } from "../../api/client";
import { fakeFetch, renderRoute } from "../../test/render";
import SnapshotView from "../SnapshotView";

type Result = Schemas["InvariantResultRead"];

function result(type: string, status: Result["status"], expected: unknown, actual: unknown, message = ""): Result {
  return { type, description: "", status, expected, actual, pass_rate: status === "passed" ? 1 : 0, message };
}

function snapshot(): Schemas["SnapshotRead"] {
  return {
    id: "s1",
    name: "bridge baseline",
    description: "",
    tags: ["regression"],
    project_id: "p1",
    run_id: "r1",
    // In the order a protobuf Struct may give them: shown in the contract's.
    snapshot_data: { chat_context: [], run_config: {}, version: "3.0", world_model: {}, problem_spec: {} },
    reference_metrics: {
      run_id: "r1",
      status: "COMPLETED",
      candidates: 3,
      scenarios: 3,
      evaluations: 9,
      failed_evaluations: 0,
      coverage: 1,
      hard_constraint_violations: 2,
      duration_seconds: 0.4,
      input_tokens: 5000,
      output_tokens: 1500,
      usd: 0.002,
      llm_calls: 11,
      unpriced_calls: 0,
      error_summary: "",
      top_i: 1.2,
      top_p: 0.6,
      top_r: 0.5,
      top_candidate_id: "c1",
      failure_reason: "",
    },
    invariants: [
      { type: "run_status", value: "COMPLETED", description: "" },
      { type: "no_hard_constraint_violations", value: true, description: "" },
    ],
    reference_results: [
      result("run_status", "passed", "COMPLETED", "COMPLETED"),
      result("no_hard_constraint_violations", "failed", true, false, "2 candidates rejected for breaking a hard constraint"),
    ],
    version: "3.0",
    parent_id: "",
    created_at: "2026-11-29T11:27:00Z",
    updated_at: "2026-11-29T11:27:00Z",
  };
}

afterEach(() => vi.unstubAllGlobals());

describe("SnapshotView", () => {
  it("says which invariants the run it was made from did not keep, and lists the copies in the contract's order", async () => {
    vi.stubGlobal("fetch", fakeFetch({ "GET /api/snapshots/s1": () => snapshot() }).fetch);
    renderRoute("/snapshots/s1", "/snapshots/:snapshotId", <SnapshotView />);

    expect(await screen.findByRole("note")).toHaveTextContent("The reference run did not keep one of these");
    const [kept, broken] = within(screen.getByRole("region", { name: "Invariants" })).getAllByRole("listitem");
    expect(kept).toHaveTextContent("reference run: passed");
    expect(broken).toHaveTextContent("reference run: failed 2 candidates rejected for breaking a hard constraint");
    const copies = within(screen.getByRole("region", { name: "Frozen copies" }));
    expect(copies.getAllByText(/^[a-z_]+$/).map((summary) => summary.textContent)).toEqual([
      "version",
      "problem_spec",
      "world_model",
      "run_config",
      "chat_context",
    ]);
  });

  it("tells an invariant the reference run broke from one that cannot be checked on its metrics", async () => {
    const base = snapshot();
    const custom = { type: "custom", value: "top_x > 1", description: "" };
    const erring = result("custom", "error", null, null, "undeclared reference to 'top_x'");
    const s = { ...base, invariants: [...base.invariants, custom], reference_results: [...base.reference_results, erring] };
    vi.stubGlobal("fetch", fakeFetch({ "GET /api/snapshots/s1": () => s }).fetch);
    renderRoute("/snapshots/s1", "/snapshots/:snapshotId", <SnapshotView />);

    const notes = await screen.findAllByRole("note");
    expect(notes.map((n) => n.textContent)).toEqual([
      "The reference run did not keep one of these: a replay that behaves like it fails it too.",
      "One of these could not be checked on the reference run's metrics (see why below): a replay that behaves like it reports it as an error too.",
    ]);
    const items = within(screen.getByRole("region", { name: "Invariants" })).getAllByRole("listitem");
    expect(items[2]).toHaveTextContent("reference run: error undeclared reference to 'top_x'");
  });
});
