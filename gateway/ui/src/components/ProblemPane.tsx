import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, unwrap, type Schemas } from "../api/client";
import { ApiError } from "../api/problem";
import { humanize, when } from "../format";
import { ErrorBox, Field, Loading } from "./ui";

type Constraint = Schemas["ConstraintBody"];
type Goal = Schemas["GoalBody"];
type Entry = Schemas["ProvenanceEntry"];

const HARD = 100;
const SECTIONS = ["actors", "mechanisms", "resources", "constraints", "assumptions", "simplifications"];
const USER_CHANGE = { reason: "edited in the web UI", actor: { kind: "user" as const, id: "" } };

function notFound(error: unknown): boolean {
  return error instanceof ApiError && error.problem.status === 404;
}

function History({ entries, label }: { entries: Entry[]; label: string }) {
  if (entries.length === 0) return <p className="muted small">No changes recorded yet.</p>;
  return (
    <ol className="timeline" aria-label={label}>
      {[...entries].reverse().map((e) => (
        <li key={e.id}>
          <div>
            <strong>{e.actor.kind === "architect" ? "Architect" : e.actor.kind === "system" ? "System" : "You"}</strong>{" "}
            {humanize(e.action)} <span className="muted">v{e.version}</span>
            {e.changed_fields.length > 0 && <> · {e.changed_fields.join(", ")}</>}
          </div>
          {/* A note on the change, not a quotation: the Architect's quotes the message itself. */}
          {e.reason && <div className="muted">{e.reason}</div>}
          <div className="muted small">
            <time dateTime={e.created_at}>{when(e.created_at)}</time>
            {e.chat_message_id && (
              <>
                {" · "}
                <a href={`#msg-${e.chat_message_id}`}>the message that asked for it</a>
              </>
            )}
          </div>
        </li>
      ))}
    </ol>
  );
}

/** A constraint as its editor holds it: the weight as typed, checked before it is saved. */
interface ConstraintDraft {
  name: string;
  description: string;
  weight: string;
}

function weightProblem(weight: string): string | undefined {
  const n = Number(weight.trim());
  if (weight.trim() === "" || !Number.isInteger(n) || n < 0 || n > HARD) return `a whole number from 0 to ${HARD}`;
  return undefined;
}

function ConstraintRow({
  constraint,
  onSave,
  onRemove,
  saving,
}: {
  constraint: Constraint;
  /** Settles once the change is stored (or refused: then it rejects). */
  onSave: (c: Constraint) => Promise<unknown>;
  onRemove: () => void;
  saving: boolean;
}) {
  const [editing, setEditing] = useState<ConstraintDraft | null>(null);
  const [refused, setRefused] = useState<unknown>(null);
  if (editing) {
    const weightWrong = weightProblem(editing.weight);
    // What the service refused was what had been typed: said until it is changed.
    const edit = (next: ConstraintDraft) => {
      setEditing(next);
      setRefused(null);
    };
    return (
      <li className="constraint editing">
        {/* Stacked: a constraint's name and description are sentences, not a line's leftovers. */}
        <form
          className="form constraint-form"
          onSubmit={(event) => {
            event.preventDefault();
            if (weightWrong) return;
            setRefused(null);
            // The editor closes once the change is stored: refused (a name taken, a version moved
            // on), it stays open with what was typed, saying why.
            onSave({ name: editing.name, description: editing.description, weight: Number(editing.weight.trim()) }).then(
              () => setEditing(null),
              (error: unknown) => setRefused(error),
            );
          }}
        >
          <Field label="Name">
            <input value={editing.name} onChange={(e) => edit({ ...editing, name: e.target.value })} required />
          </Field>
          <Field label="Description">
            <textarea rows={2} value={editing.description} onChange={(e) => edit({ ...editing, description: e.target.value })} />
          </Field>
          <div className="run-row">
            <div className="weight-input">
              <Field label={`Weight (${HARD}: hard)`} error={weightWrong}>
                <input type="text" inputMode="numeric" value={editing.weight} onChange={(e) => edit({ ...editing, weight: e.target.value })} />
              </Field>
            </div>
            <button type="submit" className="button small" disabled={saving || !!weightWrong}>
              Save
            </button>
            <button
              type="button"
              className="button small ghost"
              onClick={() => {
                setEditing(null);
                setRefused(null);
              }}
            >
              Cancel
            </button>
          </div>
          {refused !== null && <ErrorBox error={refused} action="The change was not saved" />}
        </form>
      </li>
    );
  }
  const hard = constraint.weight >= HARD;
  return (
    <li className="constraint">
      <div className="constraint-main">
        <span className="constraint-name">{constraint.name}</span>
        {hard && <span className="badge badge-hard">hard</span>}
        {constraint.description && <span className="muted small">{constraint.description}</span>}
      </div>
      <div className="weight" title={`weight ${constraint.weight}`}>
        <div className="weight-bar" aria-hidden="true">
          <div className={`weight-fill${hard ? " weight-hard" : ""}`} style={{ width: `${constraint.weight}%` }} />
        </div>
        <span className="small">{constraint.weight}</span>
      </div>
      <div className="row-actions">
        <button
          type="button"
          className="button small ghost"
          onClick={() => setEditing({ name: constraint.name, description: constraint.description ?? "", weight: String(constraint.weight) })}
          aria-label={`Edit ${constraint.name}`}
        >
          Edit
        </button>
        <button type="button" className="button small ghost" onClick={onRemove} aria-label={`Remove ${constraint.name}`} disabled={saving}>
          Remove
        </button>
      </div>
    </li>
  );
}

function ProblemSpecView({ projectId }: { projectId: string }) {
  const queryClient = useQueryClient();
  const [history, setHistory] = useState(false);
  const [newGoal, setNewGoal] = useState("");
  const spec = useQuery({
    queryKey: ["problem-spec", projectId],
    queryFn: () => unwrap(api.GET("/api/projects/{project_id}/problem-spec", { params: { path: { project_id: projectId } } })),
    retry: (count, error) => !notFound(error) && count < 2,
  });
  const provenance = useQuery({
    queryKey: ["problem-spec-provenance", projectId],
    queryFn: () =>
      unwrap(
        api.GET("/api/projects/{project_id}/problem-spec/provenance", {
          params: { path: { project_id: projectId }, query: { page_size: 200 } },
        }),
      ),
    enabled: history,
  });
  const patch = useMutation({
    mutationFn: (body: { constraints?: Constraint[]; goals?: Goal[] }) =>
      unwrap(
        api.PATCH("/api/projects/{project_id}/problem-spec", {
          params: { path: { project_id: projectId } },
          body: { ...body, ...USER_CHANGE, expected_version: spec.data?.version ?? null },
        }),
      ),
    onSuccess: (data) => {
      queryClient.setQueryData(["problem-spec", projectId], data);
      void queryClient.invalidateQueries({ queryKey: ["problem-spec-provenance", projectId] });
      void queryClient.invalidateQueries({ queryKey: ["preflight", projectId] });
    },
  });

  const missing = spec.isError && notFound(spec.error);
  const constraints = spec.data?.constraints ?? [];
  const goals = spec.data?.goals ?? [];
  const saveConstraints = (next: Constraint[]) => patch.mutate({ constraints: next });
  // A constraint's editor says itself why its change was refused, beside what was typed.
  const [fromEditor, setFromEditor] = useState(false);

  return (
    <section aria-labelledby="spec-title" className="subpane">
      <header className="pane-head">
        <h3 id="spec-title">ProblemSpec</h3>
        {spec.data && (
          <span
            className="muted small"
            title={`Version ${spec.data.version} of the ProblemSpec (History lists each change) · resolution ${spec.data.resolution}: how many candidates and scenarios a run takes by default`}
          >
            v{spec.data.version} · {spec.data.resolution} resolution
          </span>
        )}
        <button type="button" className="button small ghost" aria-pressed={history} onClick={() => setHistory(!history)}>
          History
        </button>
      </header>
      {spec.isPending && <Loading what="the ProblemSpec" />}
      {spec.isError && !missing && <ErrorBox error={spec.error} action="Loading the ProblemSpec" />}
      {missing && <p className="muted">No ProblemSpec yet: describe the problem in chat, or add a constraint below.</p>}
      {patch.isError && !fromEditor && <ErrorBox error={patch.error} action="The change was not saved" />}
      {(spec.data || missing) && (
        <>
          <h4>Constraints</h4>
          {constraints.length === 0 ? (
            <p className="muted small">No constraints.</p>
          ) : (
            <ul className="constraints">
              {constraints.map((c, index) => (
                <ConstraintRow
                  key={`${c.name}-${index}`}
                  constraint={c}
                  saving={patch.isPending}
                  onSave={(edited) => {
                    setFromEditor(true);
                    return patch.mutateAsync({ constraints: constraints.map((x, i) => (i === index ? edited : x)) });
                  }}
                  onRemove={() => {
                    setFromEditor(false);
                    saveConstraints(constraints.filter((_, i) => i !== index));
                  }}
                />
              ))}
            </ul>
          )}
          <button
            type="button"
            className="button small"
            onClick={() => {
              setFromEditor(false);
              saveConstraints([...constraints, { name: `constraint ${constraints.length + 1}`, description: "", weight: 50 }]);
            }}
            disabled={patch.isPending}
          >
            Add constraint
          </button>
          <h4>Goals</h4>
          <ul className="goals">
            {goals.map((g, index) => (
              <li key={`${g.description}-${index}`}>
                {g.description}{" "}
                <button
                  type="button"
                  className="button small ghost"
                  aria-label={`Remove goal ${g.description}`}
                  onClick={() => {
                    setFromEditor(false);
                    patch.mutate({ goals: goals.filter((_, i) => i !== index) });
                  }}
                >
                  Remove
                </button>
              </li>
            ))}
          </ul>
          <form
            className="inline-form"
            onSubmit={(event) => {
              event.preventDefault();
              if (!newGoal.trim()) return;
              setFromEditor(false);
              // Cleared once stored: refused, what was typed stays to be fixed.
              patch.mutate({ goals: [...goals, { description: newGoal.trim() }] }, { onSuccess: () => setNewGoal("") });
            }}
          >
            <label className="grow">
              <span className="sr-only">New goal</span>
              <input value={newGoal} onChange={(e) => setNewGoal(e.target.value)} placeholder="Add a goal" />
            </label>
            <button type="submit" className="button small" disabled={patch.isPending}>
              Add
            </button>
          </form>
        </>
      )}
      {history && (provenance.data ? <History entries={provenance.data.entries} label="ProblemSpec history" /> : provenance.isError ? <ErrorBox error={provenance.error} /> : <Loading what="history" />)}
    </section>
  );
}

function itemText(item: unknown): string {
  if (typeof item === "string") return item;
  if (item && typeof item === "object") {
    const o = item as Record<string, unknown>;
    const name = o.name ?? o.title;
    const description = o.description;
    if (typeof name === "string") return typeof description === "string" && description ? `${name} — ${description}` : name;
  }
  return JSON.stringify(item);
}

function SectionEditor({ section, items, onSave, saving }: { section: string; items: unknown[]; onSave: (items: unknown[]) => void; saving: boolean }) {
  const plain = items.every((i) => typeof i === "string");
  const [text, setText] = useState<string | null>(null);
  if (text === null) {
    return (
      <div className="section">
        <div className="section-head">
          <h4>{humanize(section)}</h4>
          <button
            type="button"
            className="button small ghost"
            aria-label={`Edit ${section}`}
            onClick={() => setText(plain ? (items as string[]).join("\n") : JSON.stringify(items, null, 2))}
          >
            Edit
          </button>
        </div>
        {items.length === 0 ? (
          <p className="muted small">Empty.</p>
        ) : (
          <ul>
            {items.map((item, index) => (
              <li key={index}>{itemText(item)}</li>
            ))}
          </ul>
        )}
      </div>
    );
  }
  let parsed: unknown[] | null = null;
  if (plain) parsed = text.split("\n").map((l) => l.trim()).filter(Boolean);
  else {
    try {
      const value: unknown = JSON.parse(text);
      parsed = Array.isArray(value) ? value : null;
    } catch {
      parsed = null;
    }
  }
  return (
    <form
      className="section"
      onSubmit={(event) => {
        event.preventDefault();
        if (parsed) {
          onSave(parsed);
          setText(null);
        }
      }}
    >
      <label className="field">
        <span className="field-label">{humanize(section)} {plain ? "(one per line)" : "(a JSON list)"}</span>
        <textarea rows={5} value={text} onChange={(e) => setText(e.target.value)} />
      </label>
      {!parsed && <p className="warning-text">Not a JSON list.</p>}
      <button type="submit" className="button small" disabled={!parsed || saving}>
        Save
      </button>{" "}
      <button type="button" className="button small ghost" onClick={() => setText(null)}>
        Cancel
      </button>
    </form>
  );
}

function WorldModelView({ projectId }: { projectId: string }) {
  const queryClient = useQueryClient();
  const [history, setHistory] = useState(false);
  const model = useQuery({
    queryKey: ["world-model", projectId],
    queryFn: () => unwrap(api.GET("/api/projects/{project_id}/world-model", { params: { path: { project_id: projectId } } })),
    retry: (count, error) => !notFound(error) && count < 2,
  });
  const provenance = useQuery({
    queryKey: ["world-model-provenance", projectId],
    queryFn: () =>
      unwrap(
        api.GET("/api/projects/{project_id}/world-model/provenance", {
          params: { path: { project_id: projectId }, query: { page_size: 200 } },
        }),
      ),
    enabled: history,
  });
  const patch = useMutation({
    mutationFn: (model_data: Record<string, unknown>) =>
      unwrap(
        api.PATCH("/api/projects/{project_id}/world-model", {
          params: { path: { project_id: projectId } },
          body: { model_data, ...USER_CHANGE, expected_version: model.data?.version ?? null },
        }),
      ),
    onSuccess: (data) => {
      queryClient.setQueryData(["world-model", projectId], data);
      void queryClient.invalidateQueries({ queryKey: ["world-model-provenance", projectId] });
      void queryClient.invalidateQueries({ queryKey: ["preflight", projectId] });
    },
  });
  const missing = model.isError && notFound(model.error);
  const data = (model.data?.model_data ?? {}) as Record<string, unknown>;
  return (
    <section aria-labelledby="world-title" className="subpane">
      <header className="pane-head">
        <h3 id="world-title">WorldModel</h3>
        {model.data && <span className="muted small">v{model.data.version}</span>}
        <button type="button" className="button small ghost" aria-pressed={history} onClick={() => setHistory(!history)}>
          History
        </button>
      </header>
      {model.isPending && <Loading what="the WorldModel" />}
      {model.isError && !missing && <ErrorBox error={model.error} action="Loading the WorldModel" />}
      {missing && <p className="muted">No WorldModel yet: the Architect builds it from the chat, or edit a section.</p>}
      {patch.isError && <ErrorBox error={patch.error} action="The change was not saved" />}
      {(model.data || missing) &&
        SECTIONS.map((section) => (
          <SectionEditor
            key={section}
            section={section}
            items={Array.isArray(data[section]) ? (data[section] as unknown[]) : []}
            saving={patch.isPending}
            onSave={(items) => patch.mutate({ [section]: items })}
          />
        ))}
      {history && (provenance.data ? <History entries={provenance.data.entries} label="WorldModel history" /> : provenance.isError ? <ErrorBox error={provenance.error} /> : <Loading what="history" />)}
    </section>
  );
}

export function ProblemPane({ projectId }: { projectId: string }) {
  return (
    <section className="pane problem" aria-label="Problem">
      <ProblemSpecView projectId={projectId} />
      <WorldModelView projectId={projectId} />
    </section>
  );
}
