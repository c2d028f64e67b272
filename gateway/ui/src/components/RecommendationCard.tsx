import type { RecommendedRunConfig } from "../api/metadata";
import { humanize, int, usd } from "../format";
import { Status } from "./ui";

const PARAMETER_LABELS: [keyof RecommendedRunConfig["parameters"], string][] = [
  ["num_candidates", "Candidates"],
  ["num_scenarios", "Scenarios"],
  ["budget_usd", "Budget (USD)"],
  ["budget_tokens", "Budget (tokens)"],
  ["max_runtime_s", "Max runtime (s)"],
];

/** The Architect's run recommendation in chat. "Use these settings" fills Run Config; it never runs. */
export function RecommendationCard({
  config,
  onUse,
  active,
}: {
  config: RecommendedRunConfig;
  onUse: () => void;
  active: boolean;
}) {
  const blocked = config.status === "blocked";
  const blockers =
    config.blocker_details.length > 0
      ? config.blocker_details.map((b) => b.message || humanize(b.code))
      : config.blockers.map(humanize);
  const rows: [string, string][] = [["Mode", config.mode ? humanize(config.mode) : "—"]];
  for (const [key, label] of PARAMETER_LABELS) {
    const value = config.parameters[key];
    if (value !== null && value !== undefined && value !== 0) rows.push([label, String(value)]);
  }
  const tokens = config.estimated_cost.tokens;
  rows.push(["Estimated cost", usd(config.estimated_cost.usd) + (tokens !== null ? ` · ${int(tokens)} tokens` : "")]);
  return (
    <section className={`card card-recommendation${blocked ? " card-blocked" : ""}`} aria-label="Run recommendation">
      <header className="card-head">
        <span className="card-kind">Architect run recommendation</span>
        <Status value={config.status} />
      </header>
      {blocked && blockers.length > 0 && (
        <div className="blockers" role="note">
          <strong>Blocked:</strong>
          <ul>
            {blockers.map((b) => (
              <li key={b}>{b}</li>
            ))}
          </ul>
        </div>
      )}
      <dl className="kv">
        {rows.map(([label, value]) => (
          <div key={label} className="kv-row">
            <dt>{label}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      {config.rationale && <p className="rationale">{config.rationale}</p>}
      {config.warnings.length > 0 && (
        <p className="warning-text">Warnings: {config.warnings.map(humanize).join(", ")}</p>
      )}
      <div className="card-actions">
        <button type="button" className="button" onClick={onUse} disabled={!config.mode}>
          Use these settings
        </button>
        {active && <span className="muted">In the Run Config panel</span>}
      </div>
    </section>
  );
}
