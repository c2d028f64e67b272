import { useMutation, useQuery } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { invariantLabel } from "../components/InvariantsEditor";
import { ErrorBox, Field, Loading, PageError, Status } from "../components/ui";
import { duration, humanize, num, shortId, usd, when } from "../format";
import { useTitle } from "../hooks";
import { replayEstimate, type ReplayMode } from "../replayCost";

// snapshot_data arrives as a protobuf Struct, whose keys keep no order: the copies are listed in the
// contract's (other keys after them), not differently at each load.
const COPY_ORDER = ["version", "problem_spec", "world_model", "run_config", "chat_context"];
// What each part of the frozen data is, in words (its key beside it, as an export names it).
const COPY_NAMES: Record<string, string> = {
  version: "Format version",
  problem_spec: "ProblemSpec",
  world_model: "WorldModel",
  run_config: "Run configuration",
  chat_context: "Chat context",
};
const copyRank = (key: string) => (COPY_ORDER.includes(key) ? COPY_ORDER.indexOf(key) : COPY_ORDER.length);

function Metrics({ metrics }: { metrics: Schemas["RunMetricsRead"] }) {
  return (
    <dl className="facts">
      <div>
        <dt>Status</dt>
        <dd>{metrics.status}</dd>
      </div>
      <div>
        <dt>Candidates × scenarios</dt>
        <dd>
          {metrics.candidates} × {metrics.scenarios}
        </dd>
      </div>
      <div>
        <dt>Coverage</dt>
        <dd>{num(metrics.coverage)}</dd>
      </div>
      <div>
        <dt>Hard violations</dt>
        <dd>{metrics.hard_constraint_violations}</dd>
      </div>
      <div>
        <dt>Duration</dt>
        <dd>{duration(metrics.duration_seconds)}</dd>
      </div>
      <div>
        <dt>Cost</dt>
        <dd>{usd(metrics.usd)}</dd>
      </div>
    </dl>
  );
}

function Replay({ snapshot }: { snapshot: Schemas["SnapshotRead"] }) {
  const [mode, setMode] = useState<ReplayMode>("recorded");
  const replay = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/snapshots/{snapshot_id}/replay", {
          params: { path: { snapshot_id: snapshot.id } },
          body: { replay_mode: mode, wait: true, ui_trigger_id: crypto.randomUUID() },
        }),
      ),
  });
  return (
    <section aria-labelledby="replay-title">
      <h2 id="replay-title">Replay</h2>
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          replay.mutate();
        }}
      >
        <Field label="Model answers">
          <select value={mode} onChange={(e) => setMode(e.target.value as ReplayMode)}>
            <option value="recorded">recorded: the source run's answers, $0</option>
            <option value="live">live: the models are called again</option>
          </select>
        </Field>
        <button type="submit" className="button" disabled={replay.isPending}>
          {replay.isPending ? "Replaying…" : "Replay into a new project"}
        </button>
        <span className="estimate">est. {replayEstimate([snapshot], 1, mode)}</span>
      </form>
      {replay.isError && <ErrorBox error={replay.error} action="Replay failed" />}
      {replay.data && (
        <div className="card replay-result">
          <p>
            <Status value={replay.data.status} /> run <Link to={`/runs/${replay.data.run_id}`}>{shortId(replay.data.run_id)}</Link> in{" "}
            <Link to={`/projects/${replay.data.project_id}`}>a new project</Link>
          </p>
          <ul>
            {replay.data.invariants.map((i, index) => (
              <li key={index}>
                <Status value={i.status} /> {i.description || invariantLabel(i.type)}: expected {JSON.stringify(i.expected)}, got {JSON.stringify(i.actual)}
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}

export default function SnapshotView() {
  const { snapshotId = "" } = useParams();
  const navigate = useNavigate();
  const dialog = useRef<HTMLDialogElement>(null);
  const snapshot = useQuery({
    queryKey: ["snapshot", snapshotId],
    queryFn: () => unwrap(api.GET("/api/snapshots/{snapshot_id}", { params: { path: { snapshot_id: snapshotId } } })),
  });
  useTitle(snapshot.data ? `Snapshot: ${snapshot.data.name}` : "Snapshot");
  const remove = useMutation({
    mutationFn: () =>
      unwrap(api.DELETE("/api/snapshots/{snapshot_id}", { params: { path: { snapshot_id: snapshotId }, query: { confirm: true } } })),
    onSuccess: () => navigate("/snapshots"),
  });
  if (snapshot.isPending) return <Loading what="the snapshot" />;
  if (snapshot.isError) return <PageError error={snapshot.error} what="snapshot" />;
  const s = snapshot.data;
  const data = (s.snapshot_data ?? {}) as Record<string, unknown>;
  const broken = s.reference_results.filter((r) => r.status === "failed").length;
  // An invariant these rules cannot check on the reference metrics (a custom expression that does not
  // evaluate on them) was not broken by the run: it errs on every replay alike.
  const unchecked = s.reference_results.filter((r) => r.status === "error").length;
  return (
    <div className="page">
      <header className="page-head">
        <h1>Snapshot: {s.name}</h1>
        <span className="tags">
          {s.tags.map((t) => (
            <span key={t} className="tag">
              {t}
            </span>
          ))}
        </span>
        <button type="button" className="button small ghost danger" onClick={() => dialog.current?.showModal()}>
          Delete
        </button>
      </header>
      <dialog ref={dialog} aria-labelledby="delete-snapshot">
        <h2 id="delete-snapshot">Delete “{s.name}”?</h2>
        <p>The snapshot and its frozen copies are deleted; reports that used it keep their results.</p>
        {remove.isError && <ErrorBox error={remove.error} action="Not deleted" />}
        <div className="dialog-actions">
          <button type="button" className="button ghost" onClick={() => dialog.current?.close()}>
            Keep it
          </button>
          <button type="button" className="button danger" onClick={() => remove.mutate()}>
            Delete snapshot
          </button>
        </div>
      </dialog>
      {s.description && <p>{s.description}</p>}
      <p className="muted small">
        {when(s.created_at)} · snapshot format {s.version}
        {s.project_id && (
          <>
            {" · "}
            <Link to={`/projects/${s.project_id}`}>source project</Link>
          </>
        )}
        {s.run_id && (
          <>
            {" · "}
            <Link to={`/runs/${s.run_id}`}>reference run</Link>
          </>
        )}
      </p>
      {s.reference_metrics && (
        <section aria-labelledby="reference-title">
          <h2 id="reference-title">Reference metrics</h2>
          <Metrics metrics={s.reference_metrics} />
        </section>
      )}
      <section aria-labelledby="invariants-title">
        <h2 id="invariants-title">Invariants</h2>
        {broken > 0 && (
          <p className="warnings" role="note">
            The reference run did not keep {broken === 1 ? "one of these" : `${broken} of these`}: a replay that behaves like it fails{" "}
            {broken === 1 ? "it" : "them"} too.
          </p>
        )}
        {unchecked > 0 && (
          <p className="warnings" role="note">
            {unchecked === 1 ? "One of these could not" : `${unchecked} of these could not`} be checked on the reference run's metrics
            (see why below): a replay that behaves like it reports {unchecked === 1 ? "it" : "them"} as an error too.
          </p>
        )}
        {s.invariants.length === 0 ? (
          <p className="muted">None.</p>
        ) : (
          <ul>
            {s.invariants.map((i, index) => {
              // In the invariants' order, checked against the reference metrics (none without a source run);
              // matched by type too, so that a service that sent none or other ones shows nothing wrong.
              const checked = s.reference_results[index];
              const reference = checked?.type === i.type ? checked : undefined;
              return (
                <li key={index}>
                  {/* The type's name as its JSON writes it, on hover: what an export or a CLI file holds. */}
                  <span title={i.type}>{invariantLabel(i.type)}</span>{" "}
                  {i.value !== null && i.value !== undefined && <code>{JSON.stringify(i.value)}</code>}{" "}
                  {i.description && `— ${i.description}`}
                  {reference && (
                    <span className="muted small">
                      {" · reference run: "}
                      <Status value={reference.status} />
                      {reference.status !== "passed" && ` ${reference.message || `got ${JSON.stringify(reference.actual)}`}`}
                    </span>
                  )}
                </li>
              );
            })}
          </ul>
        )}
      </section>
      <Replay snapshot={s} />
      <section aria-labelledby="copies-title">
        <h2 id="copies-title">Frozen copies</h2>
        {Object.keys(data).length === 0 && <p className="muted">No data.</p>}
        {Object.entries(data).sort(([a], [b]) => copyRank(a) - copyRank(b) || a.localeCompare(b)).map(([key, value]) => (
          <details key={key}>
            <summary>
              {COPY_NAMES[key] ?? humanize(key)} <code className="muted">{key}</code>
            </summary>
            <pre className="json" tabIndex={0}>
              {JSON.stringify(value, null, 2)}
            </pre>
          </details>
        ))}
      </section>
    </div>
  );
}
