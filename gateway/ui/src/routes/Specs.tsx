import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { Pager, usePages } from "../components/Pager";
import { Empty, ErrorBox, Field, Loading, scrollsByKeyboard, Status } from "../components/ui";
import { when } from "../format";
import { useTitle } from "../hooks";

type InterviewMode = NonNullable<Schemas["SpecCreate"]["mode"]>;

function NewSpec() {
  const [task, setTask] = useState("");
  const [title, setTitle] = useState("");
  const [mode, setMode] = useState<InterviewMode>("dual_subagent");
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const create = useMutation({
    mutationFn: () => unwrap(api.POST("/api/specs", { body: { task, title, mode } })),
    onSuccess: (spec) => {
      void queryClient.invalidateQueries({ queryKey: ["specs"] });
      navigate(`/specs/${spec.id}`);
    },
  });
  return (
    <form
      className="form card"
      aria-label="New spec"
      onSubmit={(event) => {
        event.preventDefault();
        create.mutate();
      }}
    >
      <h2>New spec</h2>
      <Field label="Task" hint="What should be built? The planning interview asks what it needs to know.">
        <textarea rows={3} value={task} onChange={(e) => setTask(e.target.value)} required />
      </Field>
      <div className="form-row">
        <Field label="Title (optional)">
          <input value={title} onChange={(e) => setTitle(e.target.value)} />
        </Field>
        <Field label="Interview">
          <select value={mode} onChange={(e) => setMode(e.target.value as InterviewMode)}>
            <option value="dual_subagent">Two providers and a judge</option>
            <option value="single">One provider</option>
            <option value="stub">Stub (no model)</option>
          </select>
        </Field>
      </div>
      {create.isError && <ErrorBox error={create.error} action="The interview failed" />}
      <button type="submit" className="button button-primary" disabled={create.isPending || !task.trim()}>
        {create.isPending ? "Interviewing…" : "Create spec"}
      </button>
    </form>
  );
}

export default function Specs() {
  useTitle("Specs & Sprints");
  const pages = usePages();
  const token = pages.token;
  const specs = useQuery({
    queryKey: ["specs", token],
    queryFn: () => unwrap(api.GET("/api/specs", { params: { query: { page_size: 20, page_token: token } } })),
  });
  return (
    <div className="page">
      <header className="page-head">
        <h1>Specs & Sprints</h1>
      </header>
      <NewSpec />
      <h2>Specs</h2>
      {specs.isPending && <Loading what="specs" />}
      {specs.isError && <ErrorBox error={specs.error} action="Loading specs" />}
      {specs.data && specs.data.specs.length === 0 && <Empty>No specs yet: describe a task above.</Empty>}
      {specs.data && specs.data.specs.length > 0 && (
        <table ref={scrollsByKeyboard} className="table">
          <thead>
            <tr>
              <th scope="col">Spec</th>
              <th scope="col">Interview</th>
              <th scope="col">Status</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {specs.data.specs.map((s) => (
              <tr key={s.id}>
                <td>
                  <Link to={`/specs/${s.id}`}>{s.title || s.task}</Link>
                </td>
                <td>
                  <Status value={s.artifacts.planning.status} />
                </td>
                <td>
                  <Status value={s.status} />
                </td>
                <td>{when(s.updated_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager pages={pages} nextToken={specs.data?.next_page_token} />
    </div>
  );
}
