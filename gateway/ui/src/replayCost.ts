import type { Schemas } from "./api/client";
import { usd } from "./format";

export type ReplayMode = NonNullable<Schemas["SnapshotTestOptions"]["replay_mode"]>;

/**
 * What replaying snapshots would cost, before it runs (a suite, or one replay): a live replay calls
 * the same models as its reference run, so about that run's cost per repetition; a recorded one
 * answers from the record at $0. A snapshot without a reference run makes the estimate partly
 * unknown, and it says so.
 */
export function replayEstimate(snapshots: Schemas["SnapshotRead"][], repetitions: number, mode: ReplayMode): string {
  if (mode === "recorded") return "$0 (recorded answers)";
  const known = snapshots.filter((s) => s.reference_metrics);
  const total = known.reduce((sum, s) => sum + (s.reference_metrics?.usd ?? 0), 0) * repetitions;
  const unknown = snapshots.length - known.length;
  return `about ${usd(total)}${unknown > 0 ? ` + ${unknown} without a reference run (unknown)` : ""}`;
}
