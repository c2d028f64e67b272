import { describe, expect, it } from "vitest";
import { cost, counted, projectLabels, usd, when } from "../format";

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
