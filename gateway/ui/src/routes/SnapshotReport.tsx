import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { closeSocket, wsUrl } from "../api/events";
import type { Problem } from "../api/problem";
import { invariantLabel } from "../components/InvariantsEditor";
import { ErrorBox, Loading, PageError, ProgressBar, scrollsByKeyboard, Status } from "../components/ui";
import { counted, duration, num, shortId, usd, when } from "../format";
import { useNow, useTitle } from "../hooks";

type Result = Schemas["SnapshotTestResultRead"];
type Replay = Schemas["ReplayProgressRead"];
type Frame = Schemas["SuiteFrame"];

function replayKey(r: Replay): string {
  return `${r.snapshot_id}:${r.repetition}`;
}

/** Follows a running suite: each replay as it moves on, each snapshot's result as it lands, then
 *  the report (the socket replays what it has). */
function useSuite(reportId: string, running: boolean) {
  const queryClient = useQueryClient();
  const [results, setResults] = useState<Result[]>([]);
  const [replays, setReplays] = useState<Map<string, Replay>>(new Map());
  const [repetitions, setRepetitions] = useState(1);
  const [problem, setProblem] = useState<Problem | null>(null);
  useEffect(() => {
    if (!running) return;
    const socket = new WebSocket(wsUrl(`/api/ws/snapshot-reports/${reportId}`));
    socket.onmessage = (message) => {
      const frame = JSON.parse(String(message.data)) as Frame;
      if (frame.type === "started") {
        setRepetitions(Math.max(1, frame.repetitions));
      } else if (frame.type === "replay") {
        setReplays((known) => new Map(known).set(replayKey(frame.replay), frame.replay));
      } else if (frame.type === "result") {
        setResults((list) => [...list.filter((r) => r.snapshot_id !== frame.result.snapshot_id), frame.result]);
      } else if (frame.type === "report") {
        queryClient.setQueryData(["snapshot-report", reportId], frame.report);
      } else if (frame.type === "error") {
        setProblem(frame.problem);
      }
    };
    return () => closeSocket(socket);
  }, [reportId, running, queryClient]);
  return { results, replays: [...replays.values()], repetitions, problem };
}

/** The replays running now, each a link to its run: what a long suite is doing meanwhile. */
function RunningReplays({ replays, repetitions }: { replays: Replay[]; repetitions: number }) {
  const running = replays.filter((r) => r.state === "running" && r.run_id);
  if (running.length === 0) return null;
  return (
    <section aria-label="Replaying now">
      <h2 className="small">Replaying now</h2>
      <ul className="plain-list small">
        {running.map((r) => (
          <li key={replayKey(r)}>
            <Link to={`/runs/${r.run_id}`}>run {shortId(r.run_id)}</Link>
            {repetitions > 1 ? `, repetition ${r.repetition} of ${repetitions}, ` : ", "}
            replaying <q>{r.snapshot_name || `snapshot ${shortId(r.snapshot_id)}`}</q>
          </li>
        ))}
      </ul>
    </section>
  );
}

function value(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) return v.map(value).join(", ");
  return typeof v === "number" ? String(Math.round(v * 1000) / 1000) : JSON.stringify(v);
}

function ResultCard({ result, asked }: { result: Result; asked: number }) {
  const deltas = Object.entries(result.metrics_delta);
  return (
    <article className="card" aria-label={`Result of ${result.snapshot_name}`}>
      <header className="card-head">
        <h3>
          <Link to={`/snapshots/${result.snapshot_id}`}>{result.snapshot_name}</Link>
        </h3>
        <Status value={result.status} />
      </header>
      <p className="muted small">
        cost {usd(result.cost_usd)} ·{" "}
        {/* Fewer than asked: the others were stopped (the cost limit) or not run; the reason says which. */}
        {result.repetitions < asked ? `${result.repetitions} of ${asked} repetitions` : counted(result.repetitions, "repetition")}
        {result.replay_run_ids.map((id) => (
          <span key={id}>
            {" · "}
            <Link to={`/runs/${id}`}>run {shortId(id)}</Link>
          </span>
        ))}
      </p>
      {result.reason && <p className="warning-text">{result.reason}</p>}
      {result.invariants.length > 0 && (
        <table ref={scrollsByKeyboard} className="table compact">
          <caption className="sr-only">Invariants</caption>
          <thead>
            <tr>
              <th scope="col">Invariant</th>
              <th scope="col">Expected</th>
              <th scope="col">Actual</th>
              <th scope="col">Pass rate</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {result.invariants.map((i, index) => (
              <tr key={index}>
                <td>{i.description || invariantLabel(i.type)}</td>
                <td>{value(i.expected)}</td>
                <td>{value(i.actual)}</td>
                <td>{num(i.pass_rate)}</td>
                <td>
                  <Status value={i.status} />
                  {i.message && <div className="small">{i.message}</div>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {deltas.length > 0 && (
        <table ref={scrollsByKeyboard} className="table compact">
          <caption className="sr-only">Metric deltas</caption>
          <thead>
            <tr>
              <th scope="col">Metric</th>
              <th scope="col">Baseline</th>
              <th scope="col">Replay</th>
              <th scope="col">Δ</th>
              <th scope="col">95 % interval</th>
            </tr>
          </thead>
          <tbody>
            {deltas.map(([metric, d]) => (
              <tr key={metric} className={d.flagged ? "flagged" : ""}>
                <td>
                  {metric}
                  {d.flagged && " (flagged)"}
                </td>
                <td>{value(d.baseline)}</td>
                <td>{value(d.replay)}</td>
                <td>{value(d.delta)}</td>
                <td>{d.ci_low !== null && d.ci_high !== null ? `${value(d.ci_low)} … ${value(d.ci_high)}` : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </article>
  );
}

export default function SnapshotReport() {
  const { reportId = "" } = useParams();
  const report = useQuery({
    queryKey: ["snapshot-report", reportId],
    queryFn: () => unwrap(api.GET("/api/snapshot-reports/{report_id}", { params: { path: { report_id: reportId } } })),
  });
  useTitle(report.data ? `Suite report ${shortId(report.data.id)}` : "Suite report");
  const running = report.data?.status === "running";
  const live = useSuite(reportId, running);
  const now = useNow(running ? 1000 : null);
  if (report.isPending) return <Loading what="the report" />;
  if (report.isError) return <PageError error={report.error} what="report" />;
  const r = report.data;
  const results = running ? mergeResults(r.results, live.results) : r.results;
  const spent = results.reduce((sum, x) => sum + x.cost_usd, 0);
  // While it runs, the counts of the results so far (the stored report's are of when it was read).
  const summary = running ? tally(results, r.snapshot_ids.length) : r.summary;
  const asked = r.options.repetitions ?? 1;
  return (
    <div className="page">
      <header className="page-head">
        <h1>Suite report {shortId(r.id)}</h1>
        <Status value={r.status} />
        {/* The suite ran to its end ("completed") whatever its snapshots found: the verdict apart. */}
        {/* Failed: a snapshot's invariant broke (a regression); error: the harness could not judge one
            (not a regression), as the CLI's exit codes 1 and 2 say. */}
        {r.status === "completed" && <Status value={verdict(r.summary)} />}
        {/* A skipped snapshot (the cost limit) is no regression, as for the CLI's exit code, but the
            verdict is not of all of them. */}
        {r.status === "completed" && r.summary.skipped > 0 && <span className="muted">{counted(r.summary.skipped, "snapshot")} not judged (skipped)</span>}
      </header>
      <dl className="facts">
        <div>
          <dt>Passed</dt>
          <dd>
            {summary.passed} / {summary.total}
          </dd>
        </div>
        <div>
          <dt>Failed · skipped · errors</dt>
          <dd>
            {summary.failed} · {summary.skipped} · {summary.errors}
          </dd>
        </div>
        <div>
          {/* A snapshot's cost is known once all of its replays have ended. */}
          <dt>{running ? "Cost of the snapshots done" : "Cost"}</dt>
          <dd>{usd(running ? spent : r.total_cost_usd)}</dd>
        </div>
        <div>
          <dt>Cost limit</dt>
          <dd>{r.options.cost_limit_usd === null || r.options.cost_limit_usd === undefined ? "none" : usd(r.options.cost_limit_usd)}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{when(r.created_at)}</dd>
        </div>
      </dl>
      {running && (
        <>
          <ProgressBar done={results.length} total={r.snapshot_ids.length} label="Snapshots replayed" />
          {/* With repetitions, a snapshot's result waits for all of its replays: they count apart. */}
          {live.repetitions > 1 && (
            <ProgressBar done={replaysOver(live.replays, results, live.repetitions)} total={r.snapshot_ids.length * live.repetitions} label="Replays" />
          )}
          {/* A snapshot with its result has no replay in progress (its moves are told no more). */}
          <RunningReplays replays={live.replays.filter((x) => !results.some((res) => res.snapshot_id === x.snapshot_id))} repetitions={live.repetitions} />
          <p className="muted small">{duration(Math.max(0, (now - new Date(r.created_at).getTime()) / 1000))} elapsed</p>
        </>
      )}
      {live.problem && <ErrorBox error={live.problem} />}
      {r.error && <p className="warning-text">{r.error}</p>}
      {results.map((result) => (
        <ResultCard key={result.snapshot_id} result={result} asked={asked} />
      ))}
    </div>
  );
}

/** The replays over: all of a snapshot's once it has its result (some never ran: the cost limit, a
 *  stop, a harness error), else those told ended or skipped. */
function replaysOver(replays: Replay[], results: Result[], repetitions: number): number {
  const judged = new Set(results.map((x) => x.snapshot_id));
  return judged.size * repetitions + replays.filter((x) => !judged.has(x.snapshot_id) && (x.state === "ended" || x.state === "skipped")).length;
}

/** Failed: a snapshot's invariant broke; error: the harness could not judge one; skipped: none was
 *  judged (the cost limit); else passed. */
function verdict(s: Schemas["ReportSummary"]): string {
  if (s.failed > 0) return "failed";
  if (s.errors > 0) return "error";
  return s.passed === 0 && s.skipped > 0 ? "skipped" : "passed";
}

function tally(results: Result[], total: number): Schemas["ReportSummary"] {
  const count = (status: string) => results.filter((x) => x.status === status).length;
  return { total, passed: count("passed"), failed: count("failed"), skipped: count("skipped"), errors: count("error") };
}

function mergeResults(stored: Result[], live: Result[]): Result[] {
  const byId = new Map(stored.map((r) => [r.snapshot_id, r]));
  for (const r of live) byId.set(r.snapshot_id, r);
  return [...byId.values()];
}
