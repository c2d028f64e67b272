import type { Schemas } from "../api/client";

export type Invariant = Schemas["InvariantBody"];

type Kind = "count" | "number" | "status" | "flag" | "fraction" | "expression";

/** The snapshot service's built-in invariant types and what each compares with. */
export const INVARIANT_TYPES: { type: string; label: string; kind: Kind; initial: unknown }[] = [
  { type: "run_status", label: "Run status is", kind: "status", initial: "COMPLETED" },
  { type: "min_candidates", label: "At least N candidates", kind: "count", initial: 1 },
  { type: "max_candidates", label: "At most N candidates", kind: "count", initial: 10 },
  { type: "min_scenarios", label: "At least N scenarios", kind: "count", initial: 1 },
  { type: "max_scenarios", label: "At most N scenarios", kind: "count", initial: 10 },
  { type: "min_top_i_score", label: "Top I at least", kind: "number", initial: 1 },
  { type: "max_top_i_score", label: "Top I at most", kind: "number", initial: 10 },
  { type: "no_hard_constraint_violations", label: "No candidate rejected for a hard constraint", kind: "flag", initial: true },
  { type: "max_duration_seconds", label: "Duration at most (s)", kind: "number", initial: 600 },
  { type: "min_evaluation_coverage", label: "Evaluation coverage at least (0–1)", kind: "fraction", initial: 1 },
  { type: "custom", label: "Custom (CEL over the metrics)", kind: "expression", initial: "evaluations == candidates * scenarios" },
];

/** An invariant type as the New snapshot form names it ("Run status is"), wherever one is shown. */
export function invariantLabel(type: string): string {
  return INVARIANT_TYPES.find((t) => t.type === type)?.label ?? type;
}

function kindOf(type: string): Kind {
  return INVARIANT_TYPES.find((t) => t.type === type)?.kind ?? "expression";
}

function ValueInput({ invariant, onChange, label }: { invariant: Invariant; onChange: (value: unknown) => void; label: string }) {
  const kind = kindOf(invariant.type);
  if (kind === "flag") return <span className="muted small">true</span>;
  if (kind === "status") {
    return (
      <select aria-label={label} value={String(invariant.value ?? "COMPLETED")} onChange={(e) => onChange(e.target.value)}>
        <option>COMPLETED</option>
        <option>FAILED</option>
        <option>CANCELLED</option>
      </select>
    );
  }
  if (kind === "expression") {
    return <input aria-label={label} value={String(invariant.value ?? "")} onChange={(e) => onChange(e.target.value)} />;
  }
  return (
    <input
      aria-label={label}
      type="number"
      step={kind === "count" ? 1 : "any"}
      min={0}
      max={kind === "fraction" ? 1 : undefined}
      value={invariant.value === null || invariant.value === undefined ? "" : String(invariant.value)}
      onChange={(e) => onChange(e.target.value === "" ? null : Number(e.target.value))}
    />
  );
}

/** Rows of (type, value, description) for the built-in invariant types. */
export function InvariantsEditor({ value, onChange }: { value: Invariant[]; onChange: (next: Invariant[]) => void }) {
  const update = (index: number, patch: Partial<Invariant>) => onChange(value.map((inv, i) => (i === index ? { ...inv, ...patch } : inv)));
  return (
    <fieldset className="invariants">
      <legend>Invariants</legend>
      {value.length === 0 && <p className="muted small">None: the replay only records its metrics.</p>}
      {value.map((invariant, index) => (
        <div key={index} className="invariant-row">
          <select
            aria-label={`Invariant ${index + 1} type`}
            value={invariant.type}
            onChange={(e) => {
              const chosen = INVARIANT_TYPES.find((t) => t.type === e.target.value);
              update(index, { type: e.target.value, value: chosen?.initial ?? null });
            }}
          >
            {INVARIANT_TYPES.map((t) => (
              <option key={t.type} value={t.type}>
                {t.label}
              </option>
            ))}
          </select>
          <ValueInput invariant={invariant} label={`Invariant ${index + 1} value`} onChange={(v) => update(index, { value: v })} />
          <input
            aria-label={`Invariant ${index + 1} description`}
            placeholder="why it must hold (optional)"
            value={invariant.description ?? ""}
            onChange={(e) => update(index, { description: e.target.value })}
          />
          <button type="button" className="button small ghost" onClick={() => onChange(value.filter((_, i) => i !== index))} aria-label={`Remove invariant ${index + 1}`}>
            Remove
          </button>
        </div>
      ))}
      <button
        type="button"
        className="button small"
        onClick={() => onChange([...value, { type: "run_status", value: "COMPLETED", description: "" }])}
      >
        Add invariant
      </button>
    </fieldset>
  );
}
