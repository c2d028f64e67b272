import { describe, expect, it } from "vitest";
import { cost, usd } from "../format";

describe("cost", () => {
  it("never shows an unknown cost as $0", () => {
    expect(usd(null)).toBe("unpriced");
    expect(cost({ usd: 0, calls: 2, unpriced_calls: 2 })).toBe("unpriced");
    expect(cost({ usd: 0.5, calls: 3, unpriced_calls: 1 })).toBe("$0.50 + 1 unpriced");
  });

  it("names the calls abandoned mid-answer apart from the sum", () => {
    expect(cost({ usd: 0.5, calls: 3, unpriced_calls: 0, cancelled_calls: 2 })).toBe("$0.50 + 2 cancelled (cost unknown)");
    expect(cost({ usd: 0.5, calls: 3, unpriced_calls: 0, cancelled_calls: 0 })).toBe("$0.50");
  });
});
