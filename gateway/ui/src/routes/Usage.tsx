import { useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { Empty, ErrorBox, Field, Loading, scrollsByKeyboard, Status } from "../components/ui";
import { cost, int, projectLabels, shortId, usd, when } from "../format";
import { useTitle } from "../hooks";

/** What a call was made for: its run, its sprint, or (an Architect turn) its project. */
function CallFor({ correlation: c, titles }: { correlation: Schemas["CorrelationRead"]; titles: Map<string, string> }) {
  if (c.run_id) return <Link to={`/runs/${encodeURIComponent(c.run_id)}`}>run {shortId(c.run_id)}</Link>;
  if (c.sprint_id) return <Link to={`/sprints/${encodeURIComponent(c.sprint_id)}`}>sprint {shortId(c.sprint_id)}</Link>;
  if (c.project_id) return <Link to={`/projects/${encodeURIComponent(c.project_id)}`}>{titles.get(c.project_id) ?? `project ${shortId(c.project_id)}`}</Link>;
  return <span className="muted">—</span>;
}

function ByProject({
  groups,
  projects,
  truncated,
  onPick,
}: {
  groups: Schemas["KeyedUsageRead"][];
  projects: Schemas["Project"][];
  truncated: boolean;
  onPick: (id: string) => void;
}) {
  // Projects sharing a title are told apart by when they were made, as in the project picker.
  const titles = projectLabels(projects);
  if (groups.length === 0) return <Empty>No project has made a model call yet.</Empty>;
  return (
    <>
      <table ref={scrollsByKeyboard} className="table">
        <caption className="sr-only">Usage by project</caption>
        <thead>
          <tr>
            <th scope="col">Project</th>
            <th scope="col">Calls</th>
            <th scope="col">Tokens in / out</th>
            <th scope="col">USD</th>
          </tr>
        </thead>
        <tbody>
          {groups.map(({ id, usage }) => (
            <tr key={id || "none"}>
              <td>
                {id === "" ? (
                  <span className="muted">outside any project</span>
                ) : (
                  <button type="button" className="linklike" onClick={() => onPick(id)}>
                    {titles.get(id) ?? shortId(id)}
                  </button>
                )}
              </td>
              <td>{int(usage.calls)}</td>
              <td>
                {int(usage.input_tokens)} / {int(usage.output_tokens)}
              </td>
              <td>{cost(usage)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {truncated && <p className="muted small">The {groups.length} most expensive projects.</p>}
    </>
  );
}

function ByRun({ runs, onPick }: { runs: Schemas["RunRead"][]; onPick: (id: string) => void }) {
  if (runs.length === 0) return <Empty>This project has no runs.</Empty>;
  return (
    <table ref={scrollsByKeyboard} className="table">
      <caption className="sr-only">Usage by run</caption>
      <thead>
        <tr>
          <th scope="col">Run</th>
          <th scope="col">Status</th>
          <th scope="col">Calls</th>
          <th scope="col">Tokens in / out</th>
          <th scope="col">USD</th>
          <th scope="col">
            <span className="sr-only">Filter</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {runs.map((r) => (
          <tr key={r.id}>
            <td>
              <Link to={`/runs/${r.id}`}>{shortId(r.id)}</Link> <span className="muted small">{when(r.created_at)}</span>
            </td>
            <td>
              <Status value={r.status} />
            </td>
            <td>{int(r.usage.calls)}</td>
            <td>
              {int(r.usage.input_tokens)} / {int(r.usage.output_tokens)}
            </td>
            <td>{cost(r.usage)}</td>
            <td>
              <button type="button" className="button small ghost" onClick={() => onPick(r.id)} aria-label={`Only this run (${shortId(r.id)})`}>
                Only this run
              </button>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export default function Usage() {
  useTitle("Usage");
  // The filter is in the address: reloaded, linked or gone back to, the page shows the same spend.
  const [search, setSearch] = useSearchParams();
  const projectId = search.get("project") ?? "";
  const runId = projectId ? (search.get("run") ?? "") : "";
  const setProjectId = (id: string) => setSearch(id ? { project: id } : {});
  const setRunId = (id: string) => setSearch(id ? { project: projectId, run: id } : { project: projectId });
  const projects = useQuery({
    queryKey: ["projects", "all-for-usage"],
    // Replays and snapshot tests spend too: their projects are named here like any other.
    queryFn: () => unwrap(api.GET("/api/projects", { params: { query: { page_size: 200, include_replays: true } } })),
  });
  const runs = useQuery({
    queryKey: ["runs", projectId, "usage"],
    enabled: projectId !== "",
    queryFn: () => unwrap(api.GET("/api/projects/{project_id}/runs", { params: { path: { project_id: projectId }, query: { page_size: 100 } } })),
  });
  const filter = { project_id: projectId, run_id: runId };
  // Over all projects, the usage API also breaks the total down by project.
  const groupBy: ("project" | "run")[] = projectId === "" ? ["project"] : [];
  const usage = useQuery({
    queryKey: ["usage", filter, groupBy],
    queryFn: () => unwrap(api.GET("/api/usage", { params: { query: { ...filter, group_by: groupBy } } })),
  });
  const calls = useQuery({
    queryKey: ["llm-calls", filter],
    queryFn: () => unwrap(api.GET("/api/llm-calls", { params: { query: { ...filter, page_size: 50 } } })),
  });
  const labels = projectLabels(projects.data?.projects ?? []);
  return (
    <div className="page">
      <header className="page-head">
        <h1>Usage</h1>
      </header>
      <div className="form-row filters">
        <Field label="Project">
          <select
            value={projectId}
            onChange={(e) => setProjectId(e.target.value)}
          >
            <option value="">All projects</option>
            {projects.data?.projects.map((p) => (
              <option key={p.id} value={p.id}>
                {labels.get(p.id)}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Run">
          <select value={runId} onChange={(e) => setRunId(e.target.value)} disabled={!projectId}>
            <option value="">All runs</option>
            {runs.data?.runs.map((r) => (
              <option key={r.id} value={r.id}>
                {r.id.slice(0, 8)} · {r.status.toLowerCase()} · {when(r.created_at)}
              </option>
            ))}
          </select>
        </Field>
      </div>
      {usage.isPending && <Loading what="usage" />}
      {usage.isError && <ErrorBox error={usage.error} action="Loading usage" />}
      {usage.data && (
        <>
          <dl className="facts">
            <div>
              <dt>Cost</dt>
              <dd>{cost(usage.data.total)}</dd>
            </div>
            <div>
              <dt>Calls</dt>
              <dd>
                {int(usage.data.total.calls)}
                {usage.data.total.failed_calls > 0 && ` (${usage.data.total.failed_calls} failed)`}
              </dd>
            </div>
            <div>
              <dt>Tokens in / out</dt>
              <dd>
                {int(usage.data.total.input_tokens)} / {int(usage.data.total.output_tokens)}
              </dd>
            </div>
          </dl>
          <h2>By model</h2>
          {usage.data.by_model.length === 0 ? (
            <Empty>No model calls for this selection.</Empty>
          ) : (
            <table ref={scrollsByKeyboard} className="table key-2">
              <thead>
                <tr>
                  <th scope="col">Provider</th>
                  <th scope="col">Model</th>
                  <th scope="col">Calls</th>
                  <th scope="col">Tokens in</th>
                  <th scope="col">Tokens out</th>
                  <th scope="col">USD</th>
                </tr>
              </thead>
              <tbody>
                {usage.data.by_model.map((m) => (
                  <tr key={`${m.provider}/${m.model_name}`}>
                    <td>{m.provider}</td>
                    <td>{m.model_name}</td>
                    <td>{int(m.usage.calls)}</td>
                    <td>{int(m.usage.input_tokens)}</td>
                    <td>{int(m.usage.output_tokens)}</td>
                    <td>{m.priced ? cost(m.usage) : "unpriced"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      {projectId === "" && usage.data?.by_project && (
        <>
          <h2>By project</h2>
          <ByProject
            groups={usage.data.by_project}
            projects={projects.data?.projects ?? []}
            truncated={usage.data.truncated.includes("project")}
            onPick={setProjectId}
          />
        </>
      )}
      {projectId !== "" && runId === "" && runs.data && (
        <>
          <h2>By run</h2>
          <ByRun runs={runs.data.runs} onPick={setRunId} />
        </>
      )}
      <h2>Latest calls</h2>
      {calls.isError && <ErrorBox error={calls.error} />}
      {calls.data && calls.data.llm_calls.length === 0 && <Empty>No calls.</Empty>}
      {calls.data && calls.data.llm_calls.length > 0 && (
        <table ref={scrollsByKeyboard} className="table compact key-2">
          <caption className="sr-only">Latest calls</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Model</th>
              <th scope="col">Purpose</th>
              <th scope="col">For</th>
              <th scope="col">Status</th>
              <th scope="col">Tokens</th>
              <th scope="col">USD</th>
              <th scope="col">Latency</th>
            </tr>
          </thead>
          <tbody>
            {calls.data.llm_calls.map((c) => (
              <tr key={c.id}>
                <td>{when(c.created_at)}</td>
                <td>{c.model_name}</td>
                <td>{c.correlation.purpose}</td>
                <td>
                  <CallFor correlation={c.correlation} titles={labels} />
                </td>
                <td>{c.status.toLowerCase()}</td>
                <td>
                  {int(c.input_tokens)} / {int(c.output_tokens)}
                </td>
                <td>{c.status.toLowerCase() === "cancelled" ? "unknown" : usd(c.usd)}</td>
                <td>{int(c.latency_ms)} ms</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
