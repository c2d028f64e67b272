import { useCallback, useState } from "react";
import type { Schemas } from "./api/client";
import { type StreamEvent, useEventStream } from "./api/events";
import { runEnded } from "./api/runs";
import { cost, spentSoFar } from "./format";

/** A run's progress folded from its event stream; kept per tab so a reload resumes where it was. */
export interface RunProgressState {
  lastSequence: number;
  status: string;
  phase: string;
  // Every phase begun so far (design and scenarios begin together).
  phasesStarted: string[];
  phasesDone: string[];
  candidates: number;
  scenarios: number;
  done: number;
  total: number;
  failed: number;
  usdSpent: number;
  // Calls so far without a price: their cost is not in usdSpent.
  unpricedCalls: number;
  reason: string;
  summaryMessageId: string | null;
  ended: boolean;
}

export const INITIAL: RunProgressState = {
  lastSequence: 0,
  status: "CREATED",
  phase: "",
  phasesStarted: [],
  phasesDone: [],
  candidates: 0,
  scenarios: 0,
  done: 0,
  total: 0,
  failed: 0,
  usdSpent: 0,
  unpricedCalls: 0,
  reason: "",
  summaryMessageId: null,
  ended: false,
};

function storageKey(runId: string): string {
  return `crucible.run-progress.${runId}`;
}

function restore(runId: string): RunProgressState {
  try {
    const saved = sessionStorage.getItem(storageKey(runId));
    return saved ? { ...INITIAL, ...(JSON.parse(saved) as RunProgressState) } : INITIAL;
  } catch {
    return INITIAL;
  }
}

export function fold(state: RunProgressState, event: StreamEvent): RunProgressState {
  const data = event.data;
  const next = { ...state, lastSequence: event.sequence };
  switch (event.type) {
    case "run.started":
      return { ...next, status: "RUNNING" };
    case "phase.started": {
      const phase = String(data.phase ?? "");
      return { ...next, phase, phasesStarted: [...state.phasesStarted.filter((p) => p !== phase), phase] };
    }
    case "phase.completed":
      // What the run has spent so far (older runs' events do not say): the design and scenario
      // calls are paid before the first evaluation says so.
      return {
        ...next,
        phasesDone: [...state.phasesDone, String(data.phase ?? "")],
        usdSpent: typeof data.usd_spent === "number" ? data.usd_spent : state.usdSpent,
        unpricedCalls: Number(data.unpriced_calls ?? state.unpricedCalls),
      };
    case "candidate.added":
      return { ...next, candidates: state.candidates + 1 };
    case "scenario.added":
      return { ...next, scenarios: state.scenarios + 1 };
    case "evaluation.completed":
    case "evaluation.failed":
      return {
        ...next,
        done: Number(data.done ?? state.done),
        total: Number(data.total ?? state.total),
        usdSpent: Number(data.usd_spent ?? state.usdSpent),
        unpricedCalls: Number(data.unpriced_calls ?? state.unpricedCalls),
        failed: state.failed + (event.type === "evaluation.failed" ? 1 : 0),
      };
    case "run.completed":
    case "run.failed":
    case "run.cancelled":
      return { ...next, status: String(data.status ?? event.type.split(".")[1]).toUpperCase(), reason: String(data.reason ?? ""), ended: true };
    case "summary.posted":
      return { ...next, summaryMessageId: String(data.message_id ?? "") };
    default:
      return next;
  }
}

/** Follows `/api/ws/runs/{id}` from the last event this tab has seen (key the caller by run id);
 * not while `enabled` is false (a run that has ended, shown on another tab than its progress). */
export function useRunProgress(runId: string, onEvent?: (event: StreamEvent) => void, enabled = true) {
  const [progress, setProgress] = useState<RunProgressState>(() => restore(runId));
  const handle = useCallback(
    (event: StreamEvent) => {
      setProgress((current) => {
        const folded = fold(current, event);
        sessionStorage.setItem(storageKey(runId), JSON.stringify(folded));
        return folded;
      });
      onEvent?.(event);
    },
    [runId, onEvent],
  );
  const stream = useEventStream(enabled ? `/api/ws/runs/${runId}` : null, progress.lastSequence, handle);
  return { progress, stream };
}

/** What a run has cost, as shown: the run's own account once it has ended and been accounted;
 *  until then — running, or just cancelled with its last calls still settling — what its events
 *  have counted, said as "so far" (``final`` false). */
export function runCost(
  run: Pick<Schemas["RunRead"], "status" | "usage"> | undefined,
  progress: Pick<RunProgressState, "usdSpent" | "unpricedCalls">,
): { text: string; final: boolean } {
  const accounted = run !== undefined && runEnded(run.status) && (run.usage.calls > 0 || progress.usdSpent === 0);
  return accounted
    ? { text: cost(run.usage), final: true }
    : { text: spentSoFar(progress.usdSpent, progress.unpricedCalls), final: false };
}
