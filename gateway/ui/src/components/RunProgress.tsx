import type { StreamState } from "../api/events";
import type { Schemas } from "../api/client";
import { counted, duration, humanize } from "../format";
import { runCost, type RunProgressState } from "../runProgress";
import { ProgressBar, Status } from "./ui";

const PHASES = ["design", "scenarios", "evaluate", "rank"];

export function RunProgressView({
  progress,
  stream,
  startedAt,
  now,
  run,
  showReason = true,
}: {
  progress: RunProgressState;
  stream: StreamState;
  startedAt: string | null | undefined;
  now: number;
  /** The run as last read: once it has ended, its cost is the run's own account (the calls still in
   *  flight at a cancel are paid after the last event that counted), as its header and the Usage
   *  page say it, not the sum the events told. */
  run?: Pick<Schemas["RunRead"], "status" | "usage">;
  /** Whether to say why the run ended, which a page that says it already (the run's header) need not. */
  showReason?: boolean;
}) {
  const elapsed = startedAt ? (now - new Date(startedAt).getTime()) / 1000 : null;
  const spent = runCost(run, progress);
  return (
    <div className="run-progress">
      <div className="run-progress-head">
        <Status value={progress.status} />
        <span className="muted">
          {progress.ended ? "finished" : stream === "open" ? "live" : stream === "connecting" ? "connecting…" : stream}
          {elapsed !== null && !progress.ended && ` · ${duration(Math.max(0, elapsed))} elapsed`}
        </span>
        <span>{spent.final ? `cost: ${spent.text}` : `cost so far: ${spent.text}`}</span>
      </div>
      <ol className="phases" aria-label="Phases">
        {PHASES.map((phase) => {
          const done = progress.phasesDone.includes(phase);
          // Designing and making scenarios go on at the same time: both are current then.
          const current = !done && progress.phasesStarted.includes(phase) && !progress.ended;
          return (
            <li key={phase} className={done ? "phase-done" : current ? "phase-current" : ""} aria-current={current ? "step" : undefined}>
              {humanize(phase)}
              {done ? " ✓" : current ? " …" : ""}
            </li>
          );
        })}
      </ol>
      {/* Before the first evaluation says its total, the pairs the candidates and scenarios make. */}
      <ProgressBar done={progress.done} total={progress.total || progress.candidates * progress.scenarios} label="Evaluations" />
      <p className="muted small">
        {counted(progress.candidates, "candidate")} · {counted(progress.scenarios, "scenario")}
        {progress.failed > 0 && ` · ${counted(progress.failed, "evaluation")} failed`}
      </p>
      {showReason && progress.reason && <p className="warning-text">{progress.reason}</p>}
    </div>
  );
}
