import { cloneElement, useId, type ReactElement, type ReactNode } from "react";
import { Link } from "react-router";
import { asProblem } from "../api/problem";

/** An API error in words, from the problem body: title, detail, and each field that was refused. */
export function ErrorBox({ error, action }: { error: unknown; action?: string }) {
  const problem = asProblem(error);
  // The gateway's detail of a refused request already names its first fields ("invalid run: title:
  // must not be empty"): those are not listed again under it.
  const unsaid = (problem.field_violations ?? []).filter((v) => !(problem.detail ?? "").includes(`${v.field}: ${v.description}`));
  return (
    <div className="error-box" role="alert">
      <strong>
        {action ? `${action}: ` : ""}
        {problem.title}
        {problem.status ? ` (${problem.status})` : ""}
      </strong>
      {problem.detail && <p>{problem.detail}</p>}
      {unsaid.length > 0 && (
        <ul>
          {unsaid.map((v) => (
            <li key={v.field + v.description}>
              {v.field ? <code>{v.field}</code> : null} {v.description}
            </li>
          ))}
        </ul>
      )}
      {problem.precondition_violations && problem.precondition_violations.length > 0 && (
        <ul>
          {problem.precondition_violations.map((v) => (
            <li key={v.subject + v.description}>{v.description}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function ProgressBar({ done, total, label }: { done: number; total: number; label: string }) {
  const percent = total > 0 ? Math.min(100, Math.round((done / total) * 100)) : 0;
  return (
    <div className="progress">
      {/* Said where it shows: two bars one above the other are told apart by their names. */}
      <span className="progress-label" aria-hidden="true">
        {label}
      </span>
      <div
        className="progress-track"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={total || 1}
        aria-valuenow={done}
        aria-valuetext={`${done} / ${total}`}
      >
        <div className="progress-fill" style={{ width: `${percent}%` }} />
      </div>
      <span className="progress-text">
        {done} / {total}
      </span>
    </div>
  );
}

const STATUS_TONE: Record<string, string> = {
  completed: "good",
  passed: "good",
  succeeded: "good",
  skipped: "warn",
  error: "bad",
  ready: "good",
  ok: "good",
  serving: "good",
  answered: "good",
  validated: "good",
  promising: "good",
  running: "busy",
  active: "busy",
  created: "idle",
  planned: "idle",
  draft: "idle",
  under_test: "idle",
  needs_answers: "warn",
  info: "idle",
  weak: "warn",
  blocked: "bad",
  failed: "bad",
  rejected: "bad",
  cancelled: "warn",
  degraded: "bad",
};

export function Status({ value }: { value: string }) {
  const tone = STATUS_TONE[value.toLowerCase()] ?? "idle";
  return <span className={`status status-${tone}`}>{value.toLowerCase().replace(/_/g, " ")}</span>;
}

/** A labelled control: the label names it and the hint describes it, so each reads as itself. */
export function Field({
  label,
  children,
  hint,
  error,
}: {
  label: string;
  children: ReactElement<FieldControlProps>;
  hint?: string;
  /** What is wrong with the value, shown under the field (and read with it). */
  error?: string;
}) {
  const id = useId();
  const described = [error ? `${id}-error` : "", hint ? `${id}-hint` : ""].filter(Boolean).join(" ");
  const control = cloneElement(children, { id, "aria-describedby": described || undefined, "aria-invalid": error ? true : undefined });
  return (
    <div className="field">
      <label className="field-label" htmlFor={id}>
        {label}
      </label>
      {control}
      {error && (
        <span className="field-error" id={`${id}-error`}>
          {error}
        </span>
      )}
      {hint && (
        <span className="field-hint" id={`${id}-hint`}>
          {hint}
        </span>
      )}
    </div>
  );
}

interface FieldControlProps {
  id?: string;
  "aria-describedby"?: string;
  "aria-invalid"?: boolean;
}

/** A page that could not be shown: a heading that says so, the reason, and a way back. */
export function PageError({ error, what }: { error: unknown; what: string }) {
  const status = asProblem(error).status;
  return (
    <div className="page">
      <h1>{status === 404 ? `No such ${what}` : status === 400 ? `Not a ${what}'s address` : `The ${what} could not be opened`}</h1>
      <ErrorBox error={error} />
      <p>
        <Link to="/">Back to the projects</Link>
      </p>
    </div>
  );
}

/**
 * A `.table`'s ref: while the table is wider than its box (a narrow screen scrolls it sideways) it
 * is a tab stop, so that a keyboard can scroll it too (and axe's scrollable-region-focusable holds);
 * otherwise it is not one.
 */
export function scrollsByKeyboard(node: HTMLElement | null): (() => void) | undefined {
  if (node === null || typeof ResizeObserver === "undefined") return undefined;
  const observer = new ResizeObserver(() => {
    if (node.scrollWidth > node.clientWidth) node.tabIndex = 0;
    else node.removeAttribute("tabindex");
  });
  observer.observe(node);
  return () => observer.disconnect();
}
