import { keepPreviousData, useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useId, useRef, useState } from "react";
import { Link } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import type { RunMode } from "../api/metadata";
import { asProblem } from "../api/problem";
import { humanize, int, shortId, usd } from "../format";
import { formField, formProblems, parametersOf, sameForm, seedIds, serviceProblems, type RunForm, type Suggestion } from "../runForm";
import { ErrorBox, Field } from "./ui";

const MODES: { value: RunMode; label: string }[] = [
  { value: "full_search", label: "Full search" },
  { value: "eval_only", label: "Evaluate only" },
  { value: "seeded", label: "Seeded" },
];
const PREFLIGHT_DELAY_MS = 300;
// A preflight that failed (a service away) is asked again this often until it answers: the panel
// unblocks itself once the services are back, without the user editing a field.
export const PREFLIGHT_RETRY_MS = 3000;
// How soon after a start another press can start another run.
export const AGAIN_AFTER_MS = 1000;

function useDebounced<T>(value: T, delay: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), delay);
    return () => clearTimeout(timer);
  }, [value, delay]);
  return settled;
}

/** The latest completed run's candidates, to tick as seeds: the field takes their ids, which
 *  nothing else on screen shows. */
function SeedPicker({ projectId, value, onChange }: { projectId: string; value: string; onChange: (ids: string) => void }) {
  const latest = useQuery({
    queryKey: ["runs", projectId, "latest-completed"],
    queryFn: () =>
      unwrap(api.GET("/api/projects/{project_id}/runs", { params: { path: { project_id: projectId }, query: { status: "COMPLETED", page_size: 1 } } })),
  });
  const runId = latest.data?.runs[0]?.id ?? null;
  const candidates = useQuery({
    queryKey: ["seed-candidates", runId],
    enabled: runId !== null,
    queryFn: () => unwrap(api.GET("/api/runs/{run_id}/candidates", { params: { path: { run_id: runId ?? "" }, query: { page_size: 100 } } })),
  });
  // A help, not the form: its failure is said quietly (the ids can still be typed).
  if (latest.isError || candidates.isError) return <p className="muted small">The latest run's candidates could not be listed to pick from.</p>;
  if (latest.data && runId === null) return <p className="muted small">No completed run yet to pick candidates from.</p>;
  if (!candidates.data) return null;
  const chosen = seedIds(value);
  const toggle = (id: string) => onChange((chosen.includes(id) ? chosen.filter((x) => x !== id) : [...chosen, id]).join(", "));
  // Ids picked from an earlier run (an evaluate-only run's candidates are copies, with ids of their own).
  const listed = new Set(candidates.data.candidates.map((c) => c.id));
  const elsewhere = chosen.filter((id) => !listed.has(id)).length;
  return (
    <fieldset className="seed-picker">
      <legend className="small">
        Pick from run <Link to={`/runs/${runId}`}>{shortId(runId ?? "")}</Link>, the latest completed
      </legend>
      {candidates.data.candidates.map((c) => (
        <label key={c.id} className="small">
          <input type="checkbox" checked={chosen.includes(c.id)} onChange={() => toggle(c.id)} /> {c.title}
        </label>
      ))}
      {elsewhere > 0 && (
        <p className="muted small">
          The field also holds {elsewhere === 1 ? "an id" : `${elsewhere} ids`} of another run's candidates (kept unless you clear it).
        </p>
      )}
    </fieldset>
  );
}

export interface RunConfigPanelProps {
  projectId: string;
  chatSessionId?: string;
  form: RunForm;
  onChange: (form: RunForm) => void;
  /** The recommendation the form was filled from, if any. */
  suggestion: Suggestion | null;
  onStarted: (run: Schemas["RunRead"]) => void;
}

/**
 * Mode, counts and budget; preflight re-checked as the form changes, its blockers and warnings in
 * its own words above the Run button. The Run button is the only control in the UI that starts a run.
 */
export function RunConfigPanel({ projectId, chatSessionId, form, onChange, suggestion, onStarted }: RunConfigPanelProps) {
  const ids = useId();
  const suggested = suggestion !== null && sameForm(form, suggestion.form);
  const checked = useDebounced(form, PREFLIGHT_DELAY_MS);
  const parameters = parametersOf(checked);
  const preflight = useQuery({
    queryKey: ["preflight", projectId, checked.mode, parameters, chatSessionId],
    queryFn: () =>
      unwrap(
        api.POST("/api/projects/{project_id}/runs/preflight", {
          params: { path: { project_id: projectId } },
          body: { mode: checked.mode, parameters, chat_session_id: chatSessionId ?? "" },
        }),
      ),
    placeholderData: keepPreviousData,
    retry: false,
    refetchInterval: (query) => (query.state.status === "error" ? PREFLIGHT_RETRY_MS : false),
  });
  const stale = checked !== form || preflight.isPlaceholderData || preflight.isFetching;

  // One press, one run. The press is the start's trigger: its id is made when the button is pressed
  // and kept until that start succeeds, so that pressing again after a failure (the run created,
  // its execution not confirmed) starts that same run rather than a second one. A press while one
  // is on its way does nothing: read from a ref, since a second click can come before the render
  // that disables the button.
  const starting = useRef(false);
  // When the last start succeeded: a double click's second click, landing just after a quick start,
  // finds "Run again" enabled; a press this soon after is that click, not a second decision.
  const startedAt = useRef(0);
  const attempt = useRef<{ config: string; triggerId: string } | null>(null);
  const body = {
    project_id: projectId,
    mode: form.mode,
    parameters: parametersOf(form),
    chat_session_id: chatSessionId ?? "",
    recommended_message_id: suggestion?.messageId ?? "",
  };
  const run = useMutation({
    mutationFn: async (triggerId: string) => {
      const created = await unwrap(
        api.POST("/api/runs", {
          body: {
            ...body,
            ui_trigger_id: triggerId,
            ui_trigger_source: "run_config_panel",
            ui_trigger_metadata: { architect_suggested: suggested, edited_after_suggestion: !!suggestion && !suggested },
          },
        }),
      );
      // Started by the attempt before this one (the same trigger gives the same run): not again.
      if (created.status !== "CREATED") return created;
      return unwrap(
        api.POST("/api/runs/{run_id}/execute", {
          params: { path: { run_id: created.id } },
          body: { phases: "all" },
        }),
      );
    },
    onSuccess: (started) => {
      attempt.current = null;
      startedAt.current = Date.now();
      onStarted(started);
    },
    onSettled: () => {
      starting.current = false;
    },
  });
  // The run this panel just started, said beside the button while the form is as it was pressed.
  const [started, setStarted] = useState<{ form: RunForm; run: Schemas["RunRead"] } | null>(null);
  const start = (clicks: number) => {
    // ``clicks``: the click's count (2 for a double click's second; 0 from the keyboard).
    if (!ready || starting.current || clicks > 1 || Date.now() - startedAt.current < AGAIN_AFTER_MS) return;
    starting.current = true;
    // A changed configuration is another start, with a trigger of its own.
    const config = JSON.stringify(body);
    if (attempt.current?.config !== config) attempt.current = { config, triggerId: crypto.randomUUID() };
    const pressed = form;
    run.mutate(attempt.current.triggerId, { onSuccess: (made) => setStarted({ form: pressed, run: made }) });
  };
  const justStarted = started !== null && !run.isPending && sameForm(started.form, form) ? started.run : null;

  // Text fields, not number ones: a number field gives "" for what it cannot read ("5e"), which
  // would pass for the default; here what is typed is what formProblems checks.
  const set = (key: keyof RunForm) => (event: { target: { value: string } }) =>
    onChange({ ...form, [key]: event.target.value });

  const result = preflight.data;
  const local = formProblems(form);
  const wrong = Object.keys(local).length > 0;
  // What the preflight said of a field is said at that field, in words (and not again in the list
  // below); checked as typed first, since a value the form cannot read is not what was asked about.
  const refused = preflight.isError ? (asProblem(preflight.error).field_violations ?? []) : [];
  const said = serviceProblems([
    ...(result && !stale ? result.blocker_details : []),
    ...refused.map((v) => ({ field: v.field, message: v.description })),
  ]);
  const problems = { ...said, ...local };
  const listed = result ? result.blocker_details.filter((b) => formField(b.field) === null) : [];
  const ready = !!result?.ready && !stale && !preflight.isError && !wrong;
  const blockersId = `${ids}-blockers`;
  const needsSeeds = form.mode !== "full_search";

  return (
    <section className="pane run-config" aria-labelledby={`${ids}-title`}>
      <header className="pane-head">
        <h2 id={`${ids}-title`}>Run Config</h2>
        {suggested && (
          <span className="badge badge-suggested" title="Filled from the Architect's latest recommendation">
            Architect-suggested
          </span>
        )}
      </header>
      {/* Enter in a field submits a form: here it does nothing, since a run is paid for and only
          the Run button, pressed, starts one. */}
      <form className="form" onSubmit={(event) => event.preventDefault()}>
        <Field label="Mode" error={problems.mode}>
          <select value={form.mode} onChange={set("mode")}>
            {MODES.map((m) => (
              <option key={m.value} value={m.value}>
                {m.label}
              </option>
            ))}
          </select>
        </Field>
        <div className="form-row">
          <Field label="Candidates" hint="empty: the default" error={problems.num_candidates}>
            <input type="text" inputMode="numeric" value={form.num_candidates} onChange={set("num_candidates")} />
          </Field>
          <Field label="Scenarios" hint="empty: the default" error={problems.num_scenarios}>
            <input type="text" inputMode="numeric" value={form.num_scenarios} onChange={set("num_scenarios")} />
          </Field>
        </div>
        <div className="form-row">
          <Field label="Budget (USD)" error={problems.budget_usd}>
            <input type="text" inputMode="decimal" value={form.budget_usd} onChange={set("budget_usd")} />
          </Field>
          <Field label="Budget (tokens)" error={problems.budget_tokens}>
            <input type="text" inputMode="numeric" value={form.budget_tokens} onChange={set("budget_tokens")} />
          </Field>
        </div>
        <Field label="Max runtime (s)" error={problems.max_runtime_s}>
          <input type="text" inputMode="numeric" value={form.max_runtime_s} onChange={set("max_runtime_s")} />
        </Field>
        {needsSeeds && (
          <Field
            label="Seed candidate ids"
            hint="comma-separated; empty: the latest completed run's candidates"
            error={problems.seed_candidate_ids}
          >
            <input type="text" value={form.seed_candidate_ids} onChange={set("seed_candidate_ids")} />
          </Field>
        )}
        {needsSeeds && (
          <SeedPicker projectId={projectId} value={form.seed_candidate_ids} onChange={(ids) => onChange({ ...form, seed_candidate_ids: ids })} />
        )}

        <div id={blockersId} className="preflight" aria-live="polite">
          {preflight.isError && refused.length === 0 && (
            <ErrorBox error={preflight.error} action="Preflight failed (checking again every few seconds)" />
          )}
          {listed.length > 0 && (
            <div className="blockers" role="note">
              <strong>Blocked</strong>
              <ul>
                {listed.map((b) => (
                  <li key={b.code + b.field} data-code={b.code}>
                    {b.message || humanize(b.code)}
                  </li>
                ))}
              </ul>
            </div>
          )}
          {result && result.warning_details.length > 0 && (
            <div className="warnings" role="note">
              <strong>Warnings</strong>
              <ul>
                {result.warning_details.map((w) => (
                  <li key={w.code}>{w.message || humanize(w.code)}</li>
                ))}
              </ul>
            </div>
          )}
          {result && result.notes.length > 0 && !wrong && Object.keys(said).length === 0 && (
            <ul className="notes">
              {result.notes.map((n) => (
                <li key={n}>{n}</li>
              ))}
            </ul>
          )}
        </div>

        <div className="run-row">
          <button
            type="button"
            className="button button-primary"
            disabled={!ready || run.isPending}
            aria-describedby={blockersId}
            onClick={(event) => start(event.detail)}
          >
            {run.isPending ? "Starting…" : justStarted ? "Run again" : "Run"}
          </button>
          <span className="estimate" aria-label="Estimated cost">
            {/* Not while a field is wrong: the estimate would be of the defaults, or of a refused count. */}
            {result && !wrong && Object.keys(said).length === 0 ? (
              <>
                est. {usd(result.estimated_cost.usd)} · {int(result.estimated_cost.tokens)} tokens · {int(result.estimated_cost.calls)} calls
              </>
            ) : preflight.isPending ? (
              "checking…"
            ) : null}
          </span>
        </div>
        {justStarted && (
          <p className="small" role="status">
            Started <Link to={`/runs/${justStarted.id}`}>run {shortId(justStarted.id)}</Link> with these settings.
          </p>
        )}
        <p className="muted small">
          {wrong || Object.keys(said).length > 0
            ? "Fix the fields marked above to run."
            : stale
              ? "Checking this configuration…"
              : ready
                ? "Ready to run."
                : result
                  ? "Fix the blockers above to run."
                  : ""}
        </p>
        {run.isError && <ErrorBox error={run.error} action="The run did not start" />}
      </form>
    </section>
  );
}
