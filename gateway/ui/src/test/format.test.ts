import { describe, expect, it } from "vitest";
import { cost, counted, projectLabels, spentSoFar, usd, when } from "../format";
import { fold, INITIAL } from "../runProgress";
import { suiteProblems } from "../suiteForm";

describe("cost", () => {
  it("never shows an unknown cost as $0", () => {
    expect(usd(null)).toBe("unpriced");
    expect([usd(0), usd(0.5), usd(0.0123), usd(0.0091), usd(0.00001), usd(0.42), usd(12.345)]).toEqual([
      "$0.00",
      "$0.50",
      "$0.0123",
      "$0.0091",
      "< $0.0001",
      "$0.42",
      "$12.35",
    ]);
    expect(cost({ usd: 0, calls: 2, unpriced_calls: 2 })).toBe("unpriced");
    expect(cost({ usd: 0.5, calls: 3, unpriced_calls: 1 })).toBe("$0.50 + 1 unpriced");
  });

  it("says a running run's spend on models without a price is unknown, not $0", () => {
    const frame = (sequence: number, type: string, data: Record<string, unknown>) => ({ run_id: "r", sequence, time: "", type, data });
    const designed = fold(INITIAL, frame(1, "phase.completed", { phase: "design", usd_spent: 0, unpriced_calls: 1 }));
    const evaluated = fold(designed, frame(2, "evaluation.completed", { done: 1, total: 4, usd_spent: 0, unpriced_calls: 3 }));
    expect([designed.unpricedCalls, evaluated.unpricedCalls]).toEqual([1, 3]);
    // A run's events from before they said so keep what was known.
    expect(fold(evaluated, frame(3, "evaluation.completed", { done: 2, total: 4, usd_spent: 0 })).unpricedCalls).toBe(3);
    expect(spentSoFar(0, 0)).toBe("$0.00");
    expect(spentSoFar(0, 12)).toBe("unpriced");
    expect(spentSoFar(0.0123, 2)).toBe("$0.0123 + 2 unpriced");
  });

  it("names the calls abandoned mid-answer apart from the sum", () => {
    expect(cost({ usd: 0.5, calls: 3, unpriced_calls: 0, cancelled_calls: 2 })).toBe("$0.50 + 2 cancelled (cost unknown)");
    expect(cost({ usd: 0.5, calls: 3, unpriced_calls: 0, cancelled_calls: 0 })).toBe("$0.50");
  });
});

describe("projectLabels", () => {
  it("tells projects of the same title apart by when each was made, and leaves the others as they are", () => {
    const labels = projectLabels([
      { id: "a", title: "Emergency department", created_at: "2026-11-29T09:00:00Z" },
      { id: "b", title: "Emergency department", created_at: "2026-11-29T10:00:00Z" },
      { id: "c", title: "Bridge", created_at: "2026-11-29T11:00:00Z" },
    ]);
    expect(labels.get("a")).toBe(`Emergency department · ${when("2026-11-29T09:00:00Z")}`);
    expect(labels.get("b")).toBe(`Emergency department · ${when("2026-11-29T10:00:00Z")}`);
    expect(labels.get("c")).toBe("Bridge");
  });
});

describe("counted", () => {
  it("gives a count its noun in the number it takes", () => {
    expect(counted(1, "candidate")).toBe("1 candidate");
    expect(counted(0, "scenario")).toBe("0 scenarios");
    expect(counted(3, "analysis", "analyses")).toBe("3 analyses");
  });
});

describe("suiteProblems", () => {
  it("reads what is typed: an amount or nothing, and 1 to 20 repetitions", () => {
    expect(suiteProblems("", "1")).toEqual({});
    expect(suiteProblems("0.015", "20")).toEqual({});
    expect(suiteProblems(" 2 ", "3")).toEqual({});
    expect(Object.keys(suiteProblems("5e", "1"))).toEqual(["costLimit"]);
    expect(Object.keys(suiteProblems("-1", "1"))).toEqual(["costLimit"]);
    expect(Object.keys(suiteProblems("1", "2.5"))).toEqual(["repetitions"]);
    expect(Object.keys(suiteProblems("1", "0"))).toEqual(["repetitions"]);
    expect(Object.keys(suiteProblems("1", "21"))).toEqual(["repetitions"]);
    expect(Object.keys(suiteProblems("1", ""))).toEqual(["repetitions"]);
  });
});
