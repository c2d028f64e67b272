import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { useLatestRun } from "../api/runs";
import { Pager, usePages } from "../components/Pager";
import { Empty, ErrorBox, Field, Loading, scrollsByKeyboard, Status } from "../components/ui";
import { when } from "../format";
import { useTitle } from "../hooks";

const PAGE_SIZE = 20;

/** A project's row: its last activity is its own last change or its latest run's, whichever is later
 *  (a run ending changes nothing of the project itself, yet it is what happened to it last). */
function ProjectRow({ project }: { project: Schemas["Project"] }) {
  const runs = useLatestRun(project.id);
  const latest = runs.data?.runs[0];
  const ran = latest ? (latest.ended_at ?? latest.started_at ?? latest.created_at) : null;
  const activity = ran && Date.parse(ran) > Date.parse(project.updated_at) ? ran : project.updated_at;
  return (
    <tr>
      <td>
        <Link to={`/projects/${project.id}`}>{project.title}</Link>
        {project.replay_of_snapshot_id && (
          <>
            {" "}
            <Link
              to={`/snapshots/${project.replay_of_snapshot_id}`}
              className="badge badge-replay"
              title="Made to replay a snapshot: open the snapshot"
              aria-label={`${project.title}: made to replay a snapshot; open the snapshot`}
            >
              replay
            </Link>
          </>
        )}
      </td>
      <td className="muted narrow-hide">{project.description}</td>
      <td>{when(activity)}</td>
      <td>
        {runs.isPending ? (
          <span className="muted">…</span>
        ) : latest ? (
          <Link to={`/runs/${latest.id}`} aria-label={`Latest run: ${latest.status.toLowerCase()}`}>
            <Status value={latest.status} />
          </Link>
        ) : (
          <span className="muted">no runs</span>
        )}
      </td>
      <td>
        <DeleteButton project={project} />
      </td>
    </tr>
  );
}

function DeleteButton({ project }: { project: Schemas["Project"] }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const queryClient = useQueryClient();
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/api/projects/{project_id}", { params: { path: { project_id: project.id } } })),
    onSuccess: () => {
      dialog.current?.close();
      void queryClient.invalidateQueries({ queryKey: ["projects"] });
    },
  });
  return (
    <>
      <button type="button" className="button small ghost danger" onClick={() => dialog.current?.showModal()} aria-label={`Delete ${project.title}`}>
        Delete
      </button>
      <dialog ref={dialog} aria-labelledby={`del-${project.id}`}>
        <h2 id={`del-${project.id}`}>Delete “{project.title}”?</h2>
        <p>The project, its chat, ProblemSpec and WorldModel are deleted. This cannot be undone.</p>
        {remove.isError && <ErrorBox error={remove.error} action="Not deleted" />}
        <div className="dialog-actions">
          <button type="button" className="button ghost" onClick={() => dialog.current?.close()}>
            Keep it
          </button>
          <button type="button" className="button danger" onClick={() => remove.mutate()} disabled={remove.isPending}>
            Delete project
          </button>
        </div>
      </dialog>
    </>
  );
}

function NewProject() {
  const [open, setOpen] = useState(false);
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const create = useMutation({
    mutationFn: () => unwrap(api.POST("/api/projects", { body: { title, description } })),
    onSuccess: (project) => {
      void queryClient.invalidateQueries({ queryKey: ["projects"] });
      navigate(`/projects/${project.id}`);
    },
  });
  if (!open) {
    return (
      <button type="button" className="button button-primary" onClick={() => setOpen(true)}>
        New project
      </button>
    );
  }
  return (
    <form
      className="form card"
      aria-label="New project"
      onSubmit={(event) => {
        event.preventDefault();
        create.mutate();
      }}
    >
      <Field label="Title">
        <input value={title} onChange={(e) => setTitle(e.target.value)} required autoFocus />
      </Field>
      <Field label="Description">
        <textarea rows={2} value={description} onChange={(e) => setDescription(e.target.value)} />
      </Field>
      {create.isError && <ErrorBox error={create.error} action="Not created" />}
      <div className="dialog-actions">
        <button type="button" className="button ghost" onClick={() => setOpen(false)}>
          Cancel
        </button>
        <button type="submit" className="button button-primary" disabled={create.isPending}>
          Create project
        </button>
      </div>
    </form>
  );
}

export default function Projects() {
  useTitle("Projects");
  // Replays and snapshot tests make a project each (one per snapshot of a suite): out of the way
  // unless asked for, and asked for in the address, so that Back returns to the same list.
  const [search, setSearch] = useSearchParams();
  const withReplays = search.get("replays") === "1";
  return (
    <div className="page">
      <header className="page-head">
        <h1>Projects</h1>
        <NewProject />
      </header>
      <label className="check muted small">
        <input type="checkbox" checked={withReplays} onChange={(e) => setSearch(e.target.checked ? { replays: "1" } : {}, { replace: true })} />
        Show the projects made to replay snapshots
      </label>
      {/* Keyed by the list it shows: a page token of one list does not page the other. */}
      <ProjectList key={String(withReplays)} withReplays={withReplays} />
    </div>
  );
}

function ProjectList({ withReplays }: { withReplays: boolean }) {
  const pages = usePages();
  const token = pages.token;
  const projects = useQuery({
    queryKey: ["projects", withReplays, token],
    queryFn: () =>
      unwrap(
        api.GET("/api/projects", {
          params: { query: { page_size: PAGE_SIZE, page_token: token, ...(withReplays ? { include_replays: true } : {}) } },
        }),
      ),
  });
  return (
    <>
      {projects.isPending && <Loading what="projects" />}
      {projects.isError && <ErrorBox error={projects.error} action="Loading projects" />}
      {projects.data && projects.data.projects.length === 0 && pages.first && (
        <Empty>
          No projects yet. Create one, then describe your problem to the Architect.
          {!withReplays && " (The projects made to replay snapshots are listed with the box above.)"}
        </Empty>
      )}
      {projects.data && projects.data.projects.length > 0 && (
        <table ref={scrollsByKeyboard} className="table">
          <thead>
            <tr>
              <th scope="col">Title</th>
              <th scope="col" className="narrow-hide">
                Description
              </th>
              <th scope="col">Last activity</th>
              <th scope="col">Latest run</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {projects.data.projects.map((p) => (
              <ProjectRow key={p.id} project={p} />
            ))}
          </tbody>
        </table>
      )}
      <Pager pages={pages} nextToken={projects.data?.next_page_token} />
    </>
  );
}
