import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import type { StreamEvent } from "../api/events";
import { runEnded, runQuery } from "../api/runs";
import { RunProgressView } from "../components/RunProgress";
import { Empty, ErrorBox, Loading, PageError, scrollsByKeyboard, Status } from "../components/ui";
import { counted, duration, humanize, num, shortId, violationsText, when } from "../format";
import { useNow, useTitle } from "../hooks";
import { runCost, type RunProgressState, useRunProgress } from "../runProgress";

type Run = Schemas["RunRead"];
type Evaluation = Schemas["EvaluationRead"];
type Candidate = Schemas["RunCandidateRead"];
type Scenario = Schemas["ScenarioRead"];

const TABS = ["progress", "results", "matrix", "candidates", "scenarios", "lineage"] as const;
type Tab = (typeof TABS)[number];
const HARD = 100;

function ended(run: Run): boolean {
  return runEnded(run.status);
}

async function pages<T>(fetchPage: (token: string) => Promise<{ items: T[]; next: string }>): Promise<T[]> {
  const all: T[] = [];
  let token = "";
  do {
    const page = await fetchPage(token);
    all.push(...page.items);
    token = page.next;
  } while (token);
  return all;
}

// How often a run's records and ranking are read again while it runs, whichever tab shows them.
const LIVE_MS = 2000;

function useRunRecords(runId: string, enabled: boolean, live: boolean) {
  const refetchInterval = live ? LIVE_MS : false;
  const candidates = useQuery({
    queryKey: ["run-candidates", runId],
    enabled,
    refetchInterval,
    queryFn: () =>
      pages<Candidate>(async (token) => {
        const page = await unwrap(
          api.GET("/api/runs/{run_id}/candidates", { params: { path: { run_id: runId }, query: { page_size: 1000, page_token: token } } }),
        );
        return { items: page.candidates, next: page.next_page_token };
      }),
  });
  const scenarios = useQuery({
    queryKey: ["run-scenarios", runId],
    enabled,
    refetchInterval,
    queryFn: () =>
      pages<Scenario>(async (token) => {
        const page = await unwrap(
          api.GET("/api/runs/{run_id}/scenarios", { params: { path: { run_id: runId }, query: { page_size: 1000, page_token: token } } }),
        );
        return { items: page.scenarios, next: page.next_page_token };
      }),
  });
  const evaluations = useQuery({
    queryKey: ["run-evaluations", runId],
    enabled,
    refetchInterval,
    queryFn: () =>
      pages<Evaluation>(async (token) => {
        const page = await unwrap(
          api.GET("/api/runs/{run_id}/evaluations", { params: { path: { run_id: runId }, query: { page_size: 1000, page_token: token } } }),
        );
        return { items: page.evaluations, next: page.next_page_token };
      }),
  });
  return { candidates, scenarios, evaluations };
}

/** Cancel a run that has not ended, asked twice: what it has paid for stays paid, the rest is not run. */
function CancelRun({ run }: { run: Run }) {
  const queryClient = useQueryClient();
  const [asking, setAsking] = useState(false);
  // The focus follows the question: to its safe answer when asked, back to the button when dropped.
  const keep = useRef<HTMLButtonElement>(null);
  const ask = useRef<HTMLButtonElement>(null);
  const wasAsking = useRef(false);
  useEffect(() => {
    if (asking) keep.current?.focus();
    else if (wasAsking.current) ask.current?.focus();
    wasAsking.current = asking;
  }, [asking]);
  const cancel = useMutation({
    mutationFn: () =>
      unwrap(api.POST("/api/runs/{run_id}/cancel", { params: { path: { run_id: run.id } }, body: { reason: "cancelled from the web UI" } })),
    onSuccess: (cancelled) => {
      queryClient.setQueryData(["run", run.id], cancelled);
      setAsking(false);
    },
  });
  if (ended(run)) return null;
  return (
    <div className="run-row" role="group" aria-label="Cancelling">
      {asking ? (
        <>
          <span>Cancel this run? The calls in flight are still paid for; nothing after them runs.</span>
          <button type="button" className="button small danger" disabled={cancel.isPending} onClick={() => cancel.mutate()}>
            {cancel.isPending ? "Cancelling…" : "Cancel the run"}
          </button>
          <button ref={keep} type="button" className="button small ghost" onClick={() => setAsking(false)}>
            Keep it running
          </button>
        </>
      ) : (
        <button ref={ask} type="button" className="button small" onClick={() => setAsking(true)}>
          Cancel run
        </button>
      )}
      {cancel.isError && <ErrorBox error={cancel.error} action="The run was not cancelled" />}
    </div>
  );
}

function RunHeader({ run, progress }: { run: Run; progress: RunProgressState }) {
  const now = useNow(run.status === "RUNNING" ? 1000 : null);
  // The project's title, from the cache the workspace shares when it was open.
  const project = useQuery({
    queryKey: ["project", run.project_id],
    queryFn: () => unwrap(api.GET("/api/projects/{project_id}", { params: { path: { project_id: run.project_id } } })),
  });
  const seconds =
    // Never below zero: the service's clock and this one's differ a little.
    run.status === "RUNNING" && run.started_at ? Math.max(0, (now - new Date(run.started_at).getTime()) / 1000) : run.duration_seconds;
  const trigger = run.trigger;
  // Accounted when it ends; until then (a cancel's last calls settling too), what its events say.
  const spent = runCost(run, progress);
  return (
    <header className="run-header">
      <div className="run-title">
        <h1>Run {shortId(run.id)}</h1>
        <Status value={run.status} />
        <span className="muted">{humanize(run.mode)}</span>
      </div>
      <dl className="facts">
        <div>
          <dt>Duration</dt>
          <dd>{duration(seconds)}</dd>
        </div>
        <div>
          <dt>Cost</dt>
          <dd>{spent.final ? spent.text : `${spent.text} so far`}</dd>
        </div>
        <div>
          <dt>Counts</dt>
          <dd>
            {run.counts.candidates} × {run.counts.scenarios} · {counted(run.counts.evaluations, "evaluation")}
          </dd>
        </div>
        <div>
          <dt>Trigger</dt>
          <dd>
            {trigger ? (
              <>
                {humanize(trigger.source)} · {when(trigger.at)}
              </>
            ) : (
              "—"
            )}
          </dd>
        </div>
        <div>
          <dt>Project</dt>
          <dd>
            <Link to={`/projects/${run.project_id}`}>{project.data?.title ?? shortId(run.project_id)}</Link>
            {run.recommended_message_id && (
              <>
                {" · "}
                <Link to={`/projects/${run.project_id}#msg-${run.recommended_message_id}`}>recommendation</Link>
              </>
            )}
          </dd>
        </div>
      </dl>
      {run.failure_reason && <p className="warning-text">{run.failure_reason}</p>}
      <CancelRun run={run} />
      {ended(run) && (
        <Link className="button small" to={`/snapshots/new?run=${run.id}`}>
          Snapshot this run
        </Link>
      )}
    </header>
  );
}

function ProgressTab({ run, progress, stream }: { run: Run } & ReturnType<typeof useRunProgress>) {
  const now = useNow(progress.ended ? null : 1000);
  return (
    <div>
      {/* Why it ended is in the header above. */}
      <RunProgressView progress={progress} stream={stream.state} startedAt={run.started_at} now={now} run={run} showReason={false} />
      {stream.problem && <ErrorBox error={stream.problem} />}
      {progress.summaryMessageId && (
        <p>
          Summary posted to the{" "}
          <Link to={`/projects/${run.project_id}#msg-${progress.summaryMessageId}`}>project's chat</Link>.
        </p>
      )}
    </div>
  );
}

function CandidateDetail({
  runId,
  candidate,
  ranked,
  scenarios,
  onClose,
}: {
  runId: string;
  candidate: Candidate | undefined;
  ranked: Schemas["RankedCandidateRead"] | undefined;
  scenarios: Map<string, Scenario>;
  onClose: () => void;
}) {
  const id = candidate?.id ?? ranked?.candidate_id ?? "";
  const evaluations = useQuery({
    queryKey: ["run-evaluations", runId, id],
    queryFn: () =>
      unwrap(api.GET("/api/runs/{run_id}/evaluations", { params: { path: { run_id: runId }, query: { candidate_id: id, page_size: 1000 } } })),
    enabled: !!id,
  });
  return (
    <section className="detail card" aria-labelledby="candidate-title">
      <header className="card-head">
        <h2 id="candidate-title">{candidate?.title ?? ranked?.title}</h2>
        <button type="button" className="button small ghost" onClick={onClose}>
          Close
        </button>
      </header>
      {ranked && (
        <p>
          <Status value={ranked.label} /> I {num(ranked.I)} · P {num(ranked.P)} · R {num(ranked.R)} · {counted(ranked.evaluations, "evaluation")}
        </p>
      )}
      {ranked && ranked.violated_constraints.length > 0 && (
        <p className="warning-text">
          Broke {ranked.violated_constraints.map((v) => `${v.constraint} (weight ${v.weight}, ${counted(v.scenarios, "scenario")})`).join("; ")}
        </p>
      )}
      {candidate && (
        <>
          <p>{candidate.description}</p>
          {candidate.approach && (
            <p>
              <strong>Approach:</strong> {candidate.approach}
            </p>
          )}
          {candidate.assumptions.length > 0 && (
            <ul>
              {candidate.assumptions.map((a) => (
                <li key={a}>{a}</li>
              ))}
            </ul>
          )}
        </>
      )}
      <h3>Evaluations</h3>
      {evaluations.isPending && <Loading what="evaluations" />}
      {evaluations.isError && <ErrorBox error={evaluations.error} />}
      {evaluations.data && (
        <table ref={scrollsByKeyboard} className="table compact">
          <thead>
            <tr>
              <th scope="col">Scenario</th>
              <th scope="col">P</th>
              <th scope="col">R</th>
              <th scope="col">Explanation</th>
            </tr>
          </thead>
          <tbody>
            {evaluations.data.evaluations.map((e) => (
              <tr key={e.id}>
                <td>{scenarios.get(e.scenario_id)?.title ?? shortId(e.scenario_id)}</td>
                <td>{num(e.P?.overall)}</td>
                <td>{num(e.R?.overall)}</td>
                <td className="small">{e.status === "failed" ? e.failure_reason : e.explanation}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** The run's ranking, best first: read again while the run runs, and once it has ended (RunView). */
function useRunResults(run: Run) {
  return useQuery({
    queryKey: ["run-results", run.id],
    refetchInterval: ended(run) ? false : LIVE_MS,
    queryFn: () => unwrap(api.GET("/api/runs/{run_id}/results", { params: { path: { run_id: run.id } } })),
  });
}

function ResultsTab({ run, records }: { run: Run; records: ReturnType<typeof useRunRecords> }) {
  const [selected, setSelected] = useState<string | null>(null);
  const results = useRunResults(run);
  const scenarios = useMemo(() => new Map((records.scenarios.data ?? []).map((s) => [s.id, s])), [records.scenarios.data]);
  if (results.isPending) return <Loading what="results" />;
  if (results.isError) return <ErrorBox error={results.error} action="Loading results" />;
  if (results.data.candidates.length === 0) return <Empty>No ranked candidates yet{run.status === "RUNNING" ? ": the run is still going." : "."}</Empty>;
  const candidate = records.candidates.data?.find((c) => c.id === selected);
  const ranked = results.data.candidates.find((c) => c.candidate_id === selected);
  return (
    <div className="results">
      <table ref={scrollsByKeyboard} className="table key-2">
        <caption className="sr-only">Ranked candidates, best first</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Candidate</th>
            <th scope="col">I</th>
            <th scope="col">P</th>
            <th scope="col">R</th>
            <th scope="col">Label</th>
            <th scope="col">Evaluations</th>
          </tr>
        </thead>
        <tbody>
          {results.data.candidates.map((c) => (
            <tr key={c.candidate_id} className={c.rejected ? "row-rejected" : ""}>
              <td>{c.rank}</td>
              <td>
                <button type="button" className="linklike" onClick={() => setSelected(c.candidate_id)}>
                  {c.title}
                </button>
                {c.rejected && c.violated_constraints.length > 0 && (
                  <div className="small warning-text">{violationsText(c.violated_constraints, c.evaluations)}</div>
                )}
              </td>
              <td>{num(c.I)}</td>
              <td>{num(c.P)}</td>
              <td>{num(c.R)}</td>
              <td>
                <Status value={c.label} />
              </td>
              <td>
                {c.evaluations}
                {c.failed_evaluations > 0 && <span className="muted"> ({c.failed_evaluations} failed)</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {selected && (
        <CandidateDetail runId={run.id} candidate={candidate} ranked={ranked} scenarios={scenarios} onClose={() => setSelected(null)} />
      )}
    </div>
  );
}

type Metric = "P" | "R" | "I";

function cellValue(e: Evaluation | undefined, metric: Metric): number | null {
  if (!e || e.status !== "succeeded" || !e.P || !e.R) return null;
  if (metric === "P") return e.P.overall;
  if (metric === "R") return e.R.overall;
  return e.R.overall > 0 ? e.P.overall / e.R.overall : null;
}

/** The lowest and highest of a metric in the matrix: colours span them, so that a run whose P
 * lies between 0.44 and 0.61 shows its differences (on a fixed 0…1 scale they looked alike). */
interface Range {
  low: number;
  high: number;
}

function rangeOf(values: (number | null)[]): Range | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? { low: Math.min(...known), high: Math.max(...known) } : null;
}

/** 0 (the worst in the run) … 1 (the best): P and I are better high, R (risk) better low. */
function goodness(value: number, metric: Metric, range: Range): number {
  const spread = range.high - range.low;
  const place = spread > 0 ? (value - range.low) / spread : 0.5;
  return metric === "R" ? 1 - place : place;
}

function cellColour(value: number | null, metric: Metric, range: Range | null): string {
  if (value === null || range === null) return "var(--cell-empty)";
  const hue = Math.round(goodness(value, metric, range) * 120);
  return `hsl(${hue} 70% 78%)`;
}

function MatrixTab({ run, records }: { run: Run; records: ReturnType<typeof useRunRecords> }) {
  const [metric, setMetric] = useState<Metric>("P");
  const [cell, setCell] = useState<Evaluation | null>(null);
  const { candidates, scenarios, evaluations } = records;
  const results = useRunResults(run);
  const byPair = useMemo(() => {
    const map = new Map<string, Evaluation>();
    for (const e of evaluations.data ?? []) map.set(`${e.candidate_id}:${e.scenario_id}`, e);
    return map;
  }, [evaluations.data]);
  const rows = useMemo(() => byRank(candidates.data ?? [], results.data), [candidates.data, results.data]);
  const range = useMemo(() => rangeOf((evaluations.data ?? []).map((e) => cellValue(e, metric))), [evaluations.data, metric]);
  if (candidates.isPending || scenarios.isPending || evaluations.isPending) return <Loading what="the matrix" />;
  const error = candidates.error ?? scenarios.error ?? evaluations.error;
  if (error) return <ErrorBox error={error} action="Loading the matrix" />;
  if (!candidates.data?.length || !scenarios.data?.length) return <Empty>No candidates or scenarios yet{run.status === "RUNNING" ? ": the run is still designing them." : "."}</Empty>;
  return (
    <div>
      <fieldset className="segmented">
        <legend>Colour by</legend>
        {(["P", "R", "I"] as Metric[]).map((m) => (
          <label key={m}>
            <input type="radio" name="metric" value={m} checked={metric === m} onChange={() => setMetric(m)} /> {m}
          </label>
        ))}
      </fieldset>
      <p className="small muted">
        {results.data?.candidates.length ? "Candidates best first. " : ""}A red outline marks a scenario in which the
        candidate broke a hard constraint; ✕, an evaluation that failed. Choose a cell for its evaluation.
      </p>
      {range && (
        <p className="matrix-legend small" aria-label={`Colour key: ${metric} from ${num(range.low, 2)} to ${num(range.high, 2)}`}>
          <span>{metric === "R" ? `${num(range.high, 2)} (riskiest)` : `${num(range.low, 2)} (worst)`}</span>
          <span className="matrix-scale" aria-hidden="true" />
          <span>{metric === "R" ? `${num(range.low, 2)} (safest)` : `${num(range.high, 2)} (best)`}</span>
          <span className="muted">of this run's {metric === "I" ? "I = P / R" : metric}</span>
        </p>
      )}
      <div className="matrix-wrap" role="region" aria-label="Results matrix" tabIndex={0}>
        <table className="matrix">
          <caption className="sr-only">Candidates by scenarios, coloured by {metric}; a red outline marks a broken hard constraint</caption>
          <thead>
            <tr>
              <th scope="col">Candidate</th>
              {scenarios.data.map((s, index) => (
                <th key={s.id} scope="col" title={s.title}>
                  S{index + 1}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => (
              <tr key={c.id}>
                <th scope="row" title={c.title}>
                  {c.title}
                </th>
                {scenarios.data.map((s) => {
                  const e = byPair.get(`${c.id}:${s.id}`);
                  const value = cellValue(e, metric);
                  const broke = e?.constraint_satisfaction.some((r) => r.weight >= HARD && !r.satisfied) ?? false;
                  return (
                    <td key={s.id} className={broke ? "cell-broken" : ""} style={{ background: cellColour(value, metric, range) }}>
                      <button
                        type="button"
                        className="cell"
                        disabled={!e}
                        aria-pressed={!!e && cell?.id === e.id}
                        onClick={() => e && setCell(e)}
                        aria-label={`${c.title} in ${s.title}: ${metric} ${num(value)}${broke ? ", hard constraint broken" : ""}${e?.status === "failed" ? ", failed" : ""}`}
                      >
                        {e?.status === "failed" ? "✕" : num(value, 2)}
                      </button>
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {/* The columns' scenarios, in words any reader reaches (a header's tooltip needs a mouse). */}
      <ol className="matrix-key small">
        {scenarios.data.map((s, index) => (
          <li key={s.id}>
            <strong>S{index + 1}</strong> {s.title}
          </li>
        ))}
      </ol>
      {cell && (
        <section className="detail card" aria-labelledby="cell-title">
          <header className="card-head">
            <h2 id="cell-title">
              {candidates.data.find((c) => c.id === cell.candidate_id)?.title} ×{" "}
              {scenarios.data.find((s) => s.id === cell.scenario_id)?.title}
            </h2>
            <button type="button" className="button small ghost" onClick={() => setCell(null)}>
              Close
            </button>
          </header>
          <p>
            <Status value={cell.status} /> P {num(cell.P?.overall)} · R {num(cell.R?.overall)}
          </p>
          {cell.failure_reason && <p className="warning-text">{cell.failure_reason}</p>}
          <p>{cell.explanation}</p>
          {cell.constraint_satisfaction.length > 0 && (
            <ul>
              {cell.constraint_satisfaction.map((r) => (
                <li key={r.constraint} className={!r.satisfied && r.weight >= HARD ? "warning-text" : ""}>
                  {r.constraint} (weight {r.weight}): {r.satisfied ? "satisfied" : "broken"} {r.note && `— ${r.note}`}
                </li>
              ))}
            </ul>
          )}
          <details>
            <summary>Raw answer</summary>
            <pre className="code">{cell.raw_answer}</pre>
          </details>
        </section>
      )}
    </div>
  );
}

/** Best first once the run is ranked, as on Results; until then in the order they were designed. */
function byRank(candidates: Candidate[], results: Schemas["RunResults"] | undefined): Candidate[] {
  const rank = new Map((results?.candidates ?? []).map((c) => [c.candidate_id, c.rank]));
  const order = (id: string) => rank.get(id) ?? Number.MAX_SAFE_INTEGER;
  return [...candidates].sort((a, b) => order(a.id) - order(b.id));
}

function CandidatesTab({ run, records }: { run: Run; records: ReturnType<typeof useRunRecords> }) {
  const { candidates } = records;
  const results = useRunResults(run);
  const labels = new Map((results.data?.candidates ?? []).map((c) => [c.candidate_id, c.label]));
  if (candidates.isPending) return <Loading what="candidates" />;
  if (candidates.isError) return <ErrorBox error={candidates.error} />;
  if (candidates.data.length === 0) return <Empty>No candidates yet.</Empty>;
  return (
    <ul className="cards">
      {byRank(candidates.data, results.data).map((c) => (
        <li key={c.id} className="card">
          {/* Under the page's h1 (the tabs have no heading of their own): h2, styled as the cards' titles. */}
          <h2 className="card-title">
            {c.title} {labels.has(c.id) && <Status value={labels.get(c.id) ?? ""} />}
          </h2>
          <p className="muted small">
            {c.origin}
            {c.source_candidate_id && ` from ${shortId(c.source_candidate_id)}`}
          </p>
          <p>{c.description}</p>
          {c.approach && <p className="small">{c.approach}</p>}
        </li>
      ))}
    </ul>
  );
}

function ScenariosTab({ records }: { records: ReturnType<typeof useRunRecords> }) {
  const { scenarios } = records;
  if (scenarios.isPending) return <Loading what="scenarios" />;
  if (scenarios.isError) return <ErrorBox error={scenarios.error} />;
  if (scenarios.data.length === 0) return <Empty>No scenarios yet.</Empty>;
  return (
    <ol className="cards">
      {scenarios.data.map((s) => (
        <li key={s.id} className="card">
          <h2 className="card-title">{s.title}</h2>
          <p className="muted small">severity {s.severity}</p>
          <p>{s.description}</p>
          {s.conditions.length > 0 && (
            <ul className="small">
              {s.conditions.map((c) => (
                <li key={c}>{c}</li>
              ))}
            </ul>
          )}
        </li>
      ))}
    </ol>
  );
}

function spanDuration(span: Schemas["LineageSpanRead"]): string {
  if (!span.started_at || !span.ended_at) return "";
  return duration((new Date(span.ended_at).getTime() - new Date(span.started_at).getTime()) / 1000);
}

function LineageTab({ run }: { run: Run }) {
  const lineage = useQuery({
    queryKey: ["run-lineage", run.id],
    queryFn: () => unwrap(api.GET("/api/runs/{run_id}/lineage", { params: { path: { run_id: run.id } } })),
  });
  if (lineage.isPending) return <Loading what="the lineage" />;
  if (lineage.isError) return <ErrorBox error={lineage.error} action="Loading the lineage" />;
  const l = lineage.data;
  return (
    <div>
      <p>
        The run's trace <code>{l.trace_id || "—"}</code>
        {l.trace_span_count > 0 && `: ${l.trace_span_count} spans, from ${l.trace_services.join(", ")}`}
        {/* The recommendation's span is the chat turn's, in a trace of its own, linked from this one. */}
        {l.recommendation && ". The recommendation is in the chat turn's own trace, linked from it."}
      </p>
      <ol className="timeline lineage">
        <li>
          <strong>Recommendation</strong>{" "}
          {l.recommendation ? (
            <Link to={`/projects/${l.project_id}#msg-${l.recommendation.message_id}`}>
              {l.recommendation.label || `message ${shortId(l.recommendation.message_id)}`}
            </Link>
          ) : (
            <span className="muted">none: started without one</span>
          )}
          {l.recommendation?.created_at && <div className="muted small">{when(l.recommendation.created_at)}</div>}
        </li>
        <li>
          <strong>Trigger</strong> {humanize(l.trigger.source)} <code className="small">{l.trigger.id}</code>
          <div className="muted small">{when(l.trigger.at)}</div>
        </li>
        {l.spans.map((span) => (
          <li key={span.span_id || span.name} className={span.found ? "" : "muted"}>
            <strong>{humanize(span.role)}</strong> {span.name} <span className="muted">({span.service})</span> {spanDuration(span)}
            <div className="small muted">
              span <code>{span.span_id}</code>
              {!span.found && " · not stored here"}
            </div>
          </li>
        ))}
        <li>
          <strong>Summary</strong>{" "}
          {l.summary ? (
            <Link to={`/projects/${l.project_id}#msg-${l.summary.message_id}`}>{l.summary.label || `message ${shortId(l.summary.message_id)}`}</Link>
          ) : (
            <span className="muted">not posted yet</span>
          )}
        </li>
      </ol>
      {l.spans_note && <p className="muted small">{l.spans_note}</p>}
    </div>
  );
}

/** Keyed by the run: another run's page starts from nothing of this one's (its progress above all). */
export default function RunView() {
  const { runId = "" } = useParams();
  return <RunPage key={runId} runId={runId} />;
}

function RunPage({ runId }: { runId: string }) {
  const [params, setParams] = useSearchParams();
  const queryClient = useQueryClient();
  const run = useQuery({
    ...runQuery(runId),
    refetchInterval: (query) => (query.state.data?.status === "RUNNING" || query.state.data?.status === "CREATED" ? 3000 : false),
  });
  useTitle(run.data ? `Run ${shortId(run.data.id)} · ${run.data.status.toLowerCase()}` : "Run");
  // The run's link (the chat summary's "View results", a CLI message) opens what it has to show:
  // the results of a run that has ended, the progress of one that has not. Chosen once, when the
  // run is first read: someone watching a run end stays on its progress.
  const [opened, setOpened] = useState<{ runId: string; tab: Tab } | null>(null);
  if (run.data !== undefined && opened?.runId !== runId) {
    setOpened({ runId, tab: ended(run.data) ? "results" : "progress" });
  }
  const asked = params.get("tab") ?? "";
  const tab: Tab = (TABS as readonly string[]).includes(asked)
    ? (asked as Tab)
    : opened?.runId === runId
      ? opened.tab
      : "progress";
  const live = run.data !== undefined && !ended(run.data);
  // The run's events, while it runs (its header's cost so far) or while its progress is shown.
  const onEvent = useCallback(
    (event: StreamEvent) => {
      if (event.type.startsWith("run.") || event.type === "summary.posted" || event.type === "phase.completed") {
        void queryClient.invalidateQueries({ queryKey: ["run", runId] });
        void queryClient.invalidateQueries({ queryKey: ["run-results", runId] });
      }
    },
    [queryClient, runId],
  );
  const { progress, stream } = useRunProgress(runId, onEvent, live || tab === "progress");
  const records = useRunRecords(runId, run.data !== undefined && ["results", "matrix", "candidates", "scenarios"].includes(tab), live);
  // The run has just ended: what the tabs show is read once more, as it ended.
  const wasLive = useRef(live);
  useEffect(() => {
    if (wasLive.current && !live) {
      for (const key of ["run-candidates", "run-scenarios", "run-evaluations", "run-results"]) {
        void queryClient.invalidateQueries({ queryKey: [key, runId] });
      }
    }
    wasLive.current = live;
  }, [live, queryClient, runId]);
  if (run.isPending) return <Loading what="the run" />;
  if (run.isError) return <PageError error={run.error} what="run" />;
  return (
    <div className="page">
      <RunHeader run={run.data} progress={progress} />
      <div role="tablist" aria-label="Run views" className="tabs">
        {TABS.map((t) => (
          <button
            key={t}
            type="button"
            role="tab"
            id={`tab-${t}`}
            aria-selected={tab === t}
            aria-controls="tab-panel"
            tabIndex={tab === t ? 0 : -1}
            onClick={() => setParams({ tab: t }, { replace: true })}
            onKeyDown={(event) => {
              const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
              if (!step) return;
              const next = TABS[(TABS.indexOf(tab) + step + TABS.length) % TABS.length] ?? "progress";
              setParams({ tab: next }, { replace: true });
              document.getElementById(`tab-${next}`)?.focus();
            }}
          >
            {humanize(t).replace(/^./, (c) => c.toUpperCase())}
          </button>
        ))}
      </div>
      <div role="tabpanel" id="tab-panel" aria-labelledby={`tab-${tab}`} className="tab-panel">
        {tab === "progress" && <ProgressTab run={run.data} progress={progress} stream={stream} />}
        {tab === "results" && <ResultsTab run={run.data} records={records} />}
        {tab === "matrix" && <MatrixTab run={run.data} records={records} />}
        {tab === "candidates" && <CandidatesTab run={run.data} records={records} />}
        {tab === "scenarios" && <ScenariosTab records={records} />}
        {tab === "lineage" && <LineageTab run={run.data} />}
      </div>
    </div>
  );
}
