import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { api, unwrap } from "../api/client";
import { InvariantsEditor, type Invariant } from "../components/InvariantsEditor";
import { ErrorBox, Field } from "../components/ui";
import { projectLabels, when } from "../format";
import { useTitle } from "../hooks";

/** Snapshot a finished run: its project's state frozen, its metrics the reference, invariants to hold. */
export default function SnapshotNew() {
  useTitle("New snapshot");
  const [params] = useSearchParams();
  const [projectId, setProjectId] = useState("");
  const [runId, setRunId] = useState(params.get("run") ?? "");
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [tags, setTags] = useState("regression");
  // What a correct Crucible always does (docs/snapshot-testing.md): it completes and covers the pairs,
  // all but the odd evaluation whose answer never validated (0.9, the seed's example). Not "no
  // candidate rejected": whether a model proposes a breaker is the model's, and rejecting it is the
  // pipeline working, so a default of it failed replays of sound runs.
  const [invariants, setInvariants] = useState<Invariant[]>([
    { type: "run_status", value: "COMPLETED", description: "" },
    { type: "min_evaluation_coverage", value: 0.9, description: "" },
  ]);
  const navigate = useNavigate();
  const projects = useQuery({
    queryKey: ["projects", "all-for-snapshot"],
    queryFn: () => unwrap(api.GET("/api/projects", { params: { query: { page_size: 200 } } })),
    enabled: !params.get("run"),
  });
  const labels = projectLabels(projects.data?.projects ?? []);
  const runs = useQuery({
    queryKey: ["runs", projectId, "for-snapshot"],
    enabled: projectId !== "",
    queryFn: () => unwrap(api.GET("/api/projects/{project_id}/runs", { params: { path: { project_id: projectId }, query: { page_size: 100 } } })),
  });
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/runs/{run_id}/snapshot", {
          params: { path: { run_id: runId } },
          body: {
            name,
            description,
            tags: tags.split(",").map((t) => t.trim()).filter(Boolean),
            invariants,
          },
        }),
      ),
    onSuccess: (snapshot) => navigate(`/snapshots/${snapshot.id}`),
  });
  return (
    <div className="page">
      <header className="page-head">
        <h1>New snapshot</h1>
      </header>
      <form
        className="form"
        aria-label="New snapshot"
        onSubmit={(event) => {
          event.preventDefault();
          create.mutate();
        }}
      >
        {params.get("run") ? (
          <p>
            From run <code>{runId}</code>
          </p>
        ) : (
          <div className="form-row">
            <Field label="Project">
              <select value={projectId} onChange={(e) => setProjectId(e.target.value)} required>
                <option value="">Choose a project</option>
                {projects.data?.projects.map((p) => (
                  <option key={p.id} value={p.id}>
                    {labels.get(p.id)}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Run">
              <select value={runId} onChange={(e) => setRunId(e.target.value)} required disabled={!projectId}>
                <option value="">Choose a run</option>
                {runs.data?.runs.map((r) => (
                  <option key={r.id} value={r.id}>
                    {r.id.slice(0, 8)} · {r.status.toLowerCase()} · {when(r.created_at)}
                  </option>
                ))}
              </select>
            </Field>
          </div>
        )}
        <div className="form-row">
          <Field label="Name" hint="empty: the project's title, the run and how it ended">
            <input value={name} onChange={(e) => setName(e.target.value)} />
          </Field>
          <Field label="Tags" hint="comma-separated">
            <input value={tags} onChange={(e) => setTags(e.target.value)} />
          </Field>
        </div>
        <Field label="Description">
          <textarea rows={2} value={description} onChange={(e) => setDescription(e.target.value)} />
        </Field>
        <InvariantsEditor value={invariants} onChange={setInvariants} />
        {create.isError && <ErrorBox error={create.error} action="Snapshot not created" />}
        <div>
          <button type="submit" className="button button-primary" disabled={!runId || create.isPending}>
            Create snapshot
          </button>
        </div>
      </form>
    </div>
  );
}
