import { screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { fakeFetch, renderRoute, socketSending } from "../../test/render";
import SnapshotReport from "../SnapshotReport";

const AT = "2026-11-29T10:00:00Z";

const RUNNING = {
  id: "rep1",
  status: "running",
  summary: { total: 2, passed: 0, failed: 0, skipped: 0, errors: 0 },
  results: [],
  total_cost_usd: 0,
  options: { cost_limit_usd: null, repetitions: 3 },
  snapshot_ids: ["s1", "s2"],
  error: "",
  created_at: AT,
  ended_at: null,
  snapshot_test_id: "t1",
};

function replay(snapshot: string, repetition: number, state: string, run_id = "") {
  return { type: "replay", replay: { snapshot_id: snapshot, snapshot_name: `Bridge ${snapshot}`, repetition, state, run_id } };
}

afterEach(() => vi.unstubAllGlobals());

describe("SnapshotReport of a suite that runs", () => {
  it("counts its replays apart from its snapshots, and links the runs replaying now", async () => {
    vi.stubGlobal(
      "WebSocket",
      socketSending([
        { type: "started", report_id: "rep1", snapshot_ids: ["s1", "s2"], repetitions: 3 },
        replay("s1", 1, "running", "run-a"),
        replay("s1", 1, "ended", "run-a"),
        replay("s1", 2, "running", "run-b"),
        replay("s2", 1, "skipped"),
        {
          type: "result",
          result: {
            snapshot_id: "s2",
            snapshot_name: "Ferry",
            status: "passed",
            reason: "2 replays stopped at their share of the cost limit",
            cost_usd: 0.0123,
            repetitions: 1,
            replay_run_ids: ["run-c"],
            invariants: [],
            metrics_delta: {},
          },
        },
      ]),
    );
    vi.stubGlobal("fetch", fakeFetch({ "GET /api/snapshot-reports/rep1": () => RUNNING }).fetch);

    renderRoute("/snapshot-reports/rep1", "/snapshot-reports/:reportId", <SnapshotReport />);

    // Four of six replays are over: s1's first, and all three of s2's, whose result ends them (its
    // other two were never told: they never ran).
    const replays = await screen.findByRole("progressbar", { name: "Replays" });
    await waitFor(() => expect(replays).toHaveAttribute("aria-valuetext", "4 / 6"));
    expect(await screen.findByRole("progressbar", { name: "Snapshots replayed" })).toHaveAttribute("aria-valuetext", "1 / 2");
    // The counts are of the results so far, not of the report as first read; and a result of fewer
    // replays than asked says so.
    expect(screen.getByText("Passed").nextElementSibling).toHaveTextContent("1 / 2");
    expect(screen.getByText(/1 of 3 repetitions/)).toBeInTheDocument();
    const now = screen.getByRole("region", { name: "Replaying now" });
    expect(within(now).getAllByRole("listitem").map((li) => li.textContent)).toEqual(["run run-b, repetition 2 of 3, replaying Bridge s1"]);
    expect(within(now).getByRole("link", { name: "run run-b" })).toHaveAttribute("href", "/runs/run-b");
  });
});

describe("SnapshotReport of a suite that ended", () => {
  it("does not call a suite whose snapshots were all skipped passed", async () => {
    const skipped = { ...RUNNING, status: "completed", ended_at: AT, summary: { total: 2, passed: 0, failed: 0, skipped: 2, errors: 0 } };
    vi.stubGlobal("fetch", fakeFetch({ "GET /api/snapshot-reports/rep1": () => skipped }).fetch);

    renderRoute("/snapshot-reports/rep1", "/snapshot-reports/:reportId", <SnapshotReport />);

    expect(await screen.findByText("2 snapshots not judged (skipped)")).toBeInTheDocument();
    const badges = [...document.querySelectorAll(".page-head .status")].map((b) => b.textContent);
    expect(badges).toEqual(["completed", "skipped"]);
  });
});
