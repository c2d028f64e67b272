import { useMutation, useQuery } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { Empty, ErrorBox, Field, Loading, scrollsByKeyboard, Status } from "../components/ui";
import { shortId, usd, when } from "../format";
import { useTitle } from "../hooks";
import { replayEstimate, type ReplayMode } from "../replayCost";
import { suiteProblems } from "../suiteForm";

function SuiteDialog({ snapshots, onClose }: { snapshots: Schemas["SnapshotRead"][]; onClose: () => void }) {
  const ids = snapshots.map((s) => s.id);
  const [costLimit, setCostLimit] = useState("1.00");
  const [repetitions, setRepetitions] = useState("1");
  const problems = suiteProblems(costLimit, repetitions);
  const valid = Object.keys(problems).length === 0;
  const [mode, setMode] = useState<ReplayMode>("live");
  const navigate = useNavigate();
  const start = useMutation({
    mutationFn: async () => {
      const { data, error, response } = await api.POST("/api/snapshots/run-tests", {
        body: {
          snapshot_ids: ids,
          wait: false,
          ui_trigger_id: crypto.randomUUID(),
          options: {
            cost_limit_usd: costLimit.trim() === "" ? null : Number(costLimit),
            repetitions: Number(repetitions) || 1,
            replay_mode: mode,
          },
        },
      });
      if (!response.ok || !data) return unwrap(Promise.resolve({ data, error, response }));
      return data;
    },
    onSuccess: (started) => {
      const id = "report_id" in started ? started.report_id : started.id;
      navigate(`/snapshot-reports/${id}`);
    },
  });
  return (
    <form
      className="form card"
      aria-label="Run a suite"
      onSubmit={(event) => {
        event.preventDefault();
        if (valid) start.mutate();
      }}
    >
      <h2>Run {ids.length} snapshot{ids.length === 1 ? "" : "s"} as a suite</h2>
      <div className="form-row">
        <Field label="Cost limit (USD)" hint="Each replay in flight holds its estimate and a margin: a replay that would cross the limit is skipped, so leave room above the estimate; empty: no limit" error={problems.costLimit}>
          <input type="text" inputMode="decimal" value={costLimit} onChange={(e) => setCostLimit(e.target.value)} />
        </Field>
        <Field label="Repetitions" hint="More than one: pass rates and intervals" error={problems.repetitions}>
          <input type="text" inputMode="numeric" value={repetitions} onChange={(e) => setRepetitions(e.target.value)} />
        </Field>
        <Field label="Model answers">
          <select value={mode} onChange={(e) => setMode(e.target.value as ReplayMode)}>
            <option value="live">live: the models are called again</option>
            <option value="recorded">recorded: the source run's answers, $0</option>
          </select>
        </Field>
      </div>
      <p className="estimate">
        Estimated cost: {problems.repetitions ? "—" : replayEstimate(snapshots, Number(repetitions), mode)}
      </p>
      {start.isError && <ErrorBox error={start.error} action="The suite did not start" />}
      <div className="dialog-actions">
        <button type="button" className="button ghost" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="button button-primary" disabled={start.isPending || !valid}>
          Run suite
        </button>
      </div>
    </form>
  );
}

function Reports() {
  const reports = useQuery({
    queryKey: ["snapshot-reports"],
    queryFn: () => unwrap(api.GET("/api/snapshot-reports", { params: { query: { page_size: 10 } } })),
  });
  if (reports.isPending) return <Loading what="reports" />;
  if (reports.isError) return <ErrorBox error={reports.error} action="Loading reports" />;
  if (reports.data.reports.length === 0) return <Empty>No suite has run yet.</Empty>;
  return (
    <table ref={scrollsByKeyboard} className="table">
      <thead>
        <tr>
          <th scope="col">Report</th>
          <th scope="col">Status</th>
          <th scope="col">Passed</th>
          <th scope="col">Cost</th>
          <th scope="col">Started</th>
        </tr>
      </thead>
      <tbody>
        {reports.data.reports.map((r) => (
          <tr key={r.id}>
            <td>
              <Link to={`/snapshot-reports/${r.id}`}>{shortId(r.id)}</Link>
            </td>
            <td>
              <Status value={r.status} />
            </td>
            <td>
              {r.summary.passed} / {r.summary.total}
            </td>
            <td>{usd(r.total_cost_usd)}</td>
            <td>{when(r.created_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export default function Snapshots() {
  useTitle("Snapshots");
  const [params, setParams] = useSearchParams();
  const tags = params.get("tags") ?? "";
  const [tagInput, setTagInput] = useState(tags);
  const [selected, setSelected] = useState<string[]>([]);
  const [suite, setSuite] = useState(false);
  const suiteRef = useRef<HTMLDivElement>(null);
  const snapshots = useQuery({
    queryKey: ["snapshots", tags],
    queryFn: () =>
      unwrap(api.GET("/api/snapshots", { params: { query: { tags: tags ? [tags] : undefined, page_size: 100 } } })),
  });
  const toggle = (id: string) => setSelected((list) => (list.includes(id) ? list.filter((x) => x !== id) : [...list, id]));
  return (
    <div className="page">
      <header className="page-head">
        <h1>Snapshots</h1>
        <Link className="button" to="/snapshots/new">
          New snapshot
        </Link>
      </header>
      <form
        className="inline-form filters"
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          setParams(tagInput.trim() ? { tags: tagInput.trim() } : {});
          setSelected([]);
        }}
      >
        <label className="grow">
          <span className="sr-only">Tags</span>
          <input value={tagInput} onChange={(e) => setTagInput(e.target.value)} placeholder="Filter by tags: regression, failure" />
        </label>
        <button type="submit" className="button small">
          Filter
        </button>
      </form>
      {snapshots.isPending && <Loading what="snapshots" />}
      {snapshots.isError && <ErrorBox error={snapshots.error} action="Loading snapshots" />}
      {snapshots.data && snapshots.data.snapshots.length === 0 && (
        <Empty>{tags ? `No snapshot has every tag of “${tags}”.` : "No snapshots yet: open a finished run and snapshot it."}</Empty>
      )}
      {snapshots.data && snapshots.data.snapshots.length > 0 && (
        <>
          <table ref={scrollsByKeyboard} className="table key-2">
            <thead>
              <tr>
                <th scope="col">
                  <span className="sr-only">Select</span>
                </th>
                <th scope="col">Name</th>
                <th scope="col">Tags</th>
                <th scope="col">Invariants</th>
                <th scope="col">Reference run</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {snapshots.data.snapshots.map((s) => (
                <tr key={s.id}>
                  <td>
                    <input type="checkbox" aria-label={`Select ${s.name}`} checked={selected.includes(s.id)} onChange={() => toggle(s.id)} />
                  </td>
                  <td>
                    <Link to={`/snapshots/${s.id}`}>{s.name}</Link>
                  </td>
                  <td>
                    <span className="tags">
                      {s.tags.map((t) => (
                        <span key={t} className="tag">
                          {t}
                        </span>
                      ))}
                    </span>
                  </td>
                  <td>{s.invariants.length}</td>
                  <td>{s.run_id ? <Link to={`/runs/${s.run_id}`}>{shortId(s.run_id)}</Link> : "—"}</td>
                  <td>{when(s.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="run-row" ref={suiteRef}>
            <button type="button" className="button button-primary" disabled={selected.length === 0} onClick={() => setSuite(true)}>
              Run suite…
            </button>
            <span className="muted small">{selected.length} selected</span>
          </div>
          {suite && (
            <SuiteDialog
              snapshots={snapshots.data.snapshots.filter((s) => selected.includes(s.id))}
              onClose={() => setSuite(false)}
            />
          )}
        </>
      )}
      <h2>Suite reports</h2>
      <Reports />
    </div>
  );
}
