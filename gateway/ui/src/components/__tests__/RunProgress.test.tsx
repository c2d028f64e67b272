import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { INITIAL } from "../../runProgress";
import { RunProgressView } from "../RunProgress";

const USAGE = { input_tokens: 900, output_tokens: 300, usd: 0.0111, calls: 12, unpriced_calls: 0, failed_calls: 0, cancelled_calls: 0 };

describe("RunProgressView", () => {
  it("while the run goes on, says what its events have counted so far", () => {
    render(
      <RunProgressView
        progress={{ ...INITIAL, status: "RUNNING", usdSpent: 0.001 }}
        stream="open"
        startedAt={null}
        now={0}
        run={{ status: "RUNNING", usage: USAGE }}
      />,
    );
    expect(screen.getByText("cost so far: $0.001")).toBeInTheDocument();
  });

  it("once the run has ended, says its own account, as its header does (a cancel's last calls are paid after the last event)", () => {
    render(
      <RunProgressView
        progress={{ ...INITIAL, status: "CANCELLED", ended: true, usdSpent: 0.001 }}
        stream="closed"
        startedAt={null}
        now={0}
        run={{ status: "CANCELLED", usage: USAGE }}
      />,
    );
    expect(screen.getByText("cost: $0.0111")).toBeInTheDocument();
  });

  it("just after a cancel, until the run is accounted, says what its events counted so far, not $0.00", () => {
    render(
      <RunProgressView
        progress={{ ...INITIAL, status: "CANCELLED", ended: true, usdSpent: 0.0052 }}
        stream="closed"
        startedAt={null}
        now={0}
        run={{ status: "CANCELLED", usage: { ...USAGE, usd: 0, calls: 0 } }}
      />,
    );
    expect(screen.getByText("cost so far: $0.0052")).toBeInTheDocument();
  });

  it("says why the run ended, unless the page says it already", () => {
    const ended = { ...INITIAL, status: "CANCELLED", ended: true, reason: "cancelled from the web UI" };
    const { rerender } = render(<RunProgressView progress={ended} stream="closed" startedAt={null} now={0} />);
    expect(screen.getByText("cancelled from the web UI")).toBeInTheDocument();
    rerender(<RunProgressView progress={ended} stream="closed" startedAt={null} now={0} showReason={false} />);
    expect(screen.queryByText("cancelled from the web UI")).not.toBeInTheDocument();
  });
});
