import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { Empty, ErrorBox, Field, Loading, PageError, Status } from "../components/ui";
import { counted, when } from "../format";
import { useTitle } from "../hooks";

type InterviewRecord = Schemas["InterviewRecord"];

/**
 * The interview's record (`planning.metadata`, typed by the OpenAPI document's InterviewRecord but
 * a free object on the wire): a spec interviewed in stub mode, or by an older version, may lack it.
 */
function interviewOf(metadata: Record<string, unknown>): InterviewRecord | null {
  const record = metadata as Partial<InterviewRecord>;
  return Array.isArray(record.candidates) ? (metadata as InterviewRecord) : null;
}

function Interview({ spec }: { spec: Schemas["SpecRead"] }) {
  const record = interviewOf(spec.artifacts.planning.metadata);
  if (!record || record.candidates.length === 0) return null;
  const { candidates, judge, selected_candidate: selected, errors } = record;
  return (
    <section aria-labelledby="interview-title">
      <h2 id="interview-title">The interview</h2>
      <div className="columns">
        {candidates.map((c) => (
          <article key={c.name} className={`card${selected?.name === c.name ? " card-chosen" : ""}`}>
            <header className="card-head">
              <h3>
                {c.name} <span className="muted small">{c.provider} · {c.model_name}</span>
              </h3>
              {selected?.name === c.name && <span className="badge badge-suggested">judge's choice</span>}
            </header>
            <ol>
              {c.questions.map((q) => (
                <li key={q.question}>{q.question}</li>
              ))}
            </ol>
          </article>
        ))}
      </div>
      {judge && (
        <p>
          <strong>Judge</strong> ({judge.provider} · {judge.model_name}):{" "}
          {judge.fallback ? `no decision — ${judge.fallback_reason}` : judge.rationale}
        </p>
      )}
      {errors.map((e) => (
        <p key={e.name} className="warning-text">
          {e.name}: {e.message}
        </p>
      ))}
    </section>
  );
}

function Answers({ spec }: { spec: Schemas["SpecRead"] }) {
  const queryClient = useQueryClient();
  const planning = spec.artifacts.planning;
  const [answers, setAnswers] = useState<Record<string, string>>(() =>
    Object.fromEntries(planning.answers.map((a) => [a.question, a.answer])),
  );
  const save = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/specs/{spec_id}/answers", {
          params: { path: { spec_id: spec.id } },
          body: {
            answers: Object.entries(answers)
              .filter(([, answer]) => answer.trim())
              .map(([question, answer]) => ({ question, answer })),
          },
        }),
      ),
    onSuccess: (result) => queryClient.setQueryData(["spec", spec.id], result.spec),
  });
  return (
    <form
      className="form"
      aria-labelledby="questions-title"
      onSubmit={(event) => {
        event.preventDefault();
        save.mutate();
      }}
    >
      <h2 id="questions-title">Questions</h2>
      {planning.questions.map((q, index) => (
        <Field key={q.question} label={`${index + 1}. ${q.question}`} hint={q.rationale}>
          <textarea rows={2} value={answers[q.question] ?? ""} onChange={(e) => setAnswers({ ...answers, [q.question]: e.target.value })} />
        </Field>
      ))}
      {save.isError && <ErrorBox error={save.error} action="Answers not saved" />}
      {save.data && save.data.unanswered_questions.length > 0 && (
        <p className="warning-text">
          {counted(save.data.unanswered_questions.length, "question")} still {save.data.unanswered_questions.length === 1 ? "needs" : "need"} an answer.
        </p>
      )}
      <button type="submit" className="button" disabled={save.isPending}>
        Save answers
      </button>
    </form>
  );
}

function Sprints({ spec }: { spec: Schemas["SpecRead"] }) {
  const [name, setName] = useState("");
  const [goal, setGoal] = useState("");
  const navigate = useNavigate();
  const sprints = useQuery({
    queryKey: ["sprints", spec.id],
    queryFn: () => unwrap(api.GET("/api/sprints", { params: { query: { spec_id: spec.id, page_size: 100 } } })),
  });
  const create = useMutation({
    mutationFn: () => unwrap(api.POST("/api/sprints", { body: { spec_id: spec.id, name, goal } })),
    onSuccess: (sprint) => navigate(`/sprints/${sprint.id}`),
  });
  const answered = spec.artifacts.planning.status === "answered";
  return (
    <section aria-labelledby="sprints-title">
      <h2 id="sprints-title">Sprints</h2>
      {sprints.isPending && <Loading what="sprints" />}
      {sprints.isError && <ErrorBox error={sprints.error} />}
      {sprints.data && sprints.data.sprints.length === 0 && <Empty>No sprints for this spec yet.</Empty>}
      {sprints.data && sprints.data.sprints.length > 0 && (
        <ul>
          {sprints.data.sprints.map((s) => (
            <li key={s.id}>
              <Link to={`/sprints/${s.id}`}>{s.name}</Link> <Status value={s.status} /> <span className="muted small">{when(s.created_at)}</span>
            </li>
          ))}
        </ul>
      )}
      <form
        className="form card"
        aria-label="New sprint"
        onSubmit={(event) => {
          event.preventDefault();
          create.mutate();
        }}
      >
        <div className="form-row">
          <Field label="Sprint name">
            <input value={name} onChange={(e) => setName(e.target.value)} required />
          </Field>
          <Field label="Goal (optional)">
            <input value={goal} onChange={(e) => setGoal(e.target.value)} />
          </Field>
        </div>
        {!answered && <p className="muted small">Answer every question first: a sprint needs an answered spec.</p>}
        {create.isError && <ErrorBox error={create.error} action="Sprint not created" />}
        <button type="submit" className="button" disabled={!answered || create.isPending || !name.trim()}>
          Create sprint
        </button>
      </form>
    </section>
  );
}

export default function SpecView() {
  const { specId = "" } = useParams();
  const spec = useQuery({
    queryKey: ["spec", specId],
    queryFn: () => unwrap(api.GET("/api/specs/{spec_id}", { params: { path: { spec_id: specId } } })),
  });
  useTitle(spec.data?.title || "Spec");
  if (spec.isPending) return <Loading what="the spec" />;
  if (spec.isError) return <PageError error={spec.error} what="spec" />;
  return (
    <div className="page">
      <header className="page-head">
        <h1>{spec.data.title || "Spec"}</h1>
        <Status value={spec.data.artifacts.planning.status} />
      </header>
      <p>{spec.data.task}</p>
      <Interview spec={spec.data} />
      <Answers key={spec.data.updated_at} spec={spec.data} />
      <Sprints spec={spec.data} />
    </div>
  );
}
