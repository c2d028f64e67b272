import type { RecommendedRunConfig, RunMode, RunParameters } from "./api/metadata";

/** The Run Config panel's form: text as typed, so an empty field means "the service's default". */
export interface RunForm {
  mode: RunMode;
  num_candidates: string;
  num_scenarios: string;
  budget_usd: string;
  budget_tokens: string;
  max_runtime_s: string;
  seed_candidate_ids: string;
}

export const EMPTY_FORM: RunForm = {
  mode: "full_search",
  num_candidates: "",
  num_scenarios: "",
  budget_usd: "",
  budget_tokens: "",
  max_runtime_s: "",
  seed_candidate_ids: "",
};

/** An Architect recommendation, as the panel uses it: the message that made it and its form. */
export interface Suggestion {
  messageId: string;
  // The chat session the recommendation was made in: a run started from it names that session.
  sessionId: string;
  form: RunForm;
}

function text(value: number | null | undefined): string {
  return value === null || value === undefined ? "" : String(value);
}

export function formFromRecommendation(config: RecommendedRunConfig): RunForm {
  const p = config.parameters;
  return {
    mode: config.mode ?? "full_search",
    num_candidates: text(p.num_candidates || null),
    num_scenarios: text(p.num_scenarios || null),
    budget_usd: text(p.budget_usd),
    budget_tokens: text(p.budget_tokens),
    max_runtime_s: text(p.max_runtime_s),
    seed_candidate_ids: (p.seed_candidate_ids ?? []).join(", "),
  };
}

function whole(value: string): number | undefined {
  const n = Number(value);
  return value.trim() === "" || Number.isNaN(n) ? undefined : Math.trunc(n);
}

/** The ids in the seed field: comma- or space-separated. */
export function seedIds(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function parametersOf(form: RunForm): RunParameters {
  const parameters: RunParameters = {};
  const candidates = whole(form.num_candidates);
  const scenarios = whole(form.num_scenarios);
  if (candidates !== undefined) parameters.num_candidates = candidates;
  if (scenarios !== undefined) parameters.num_scenarios = scenarios;
  if (form.budget_usd.trim() !== "" && !Number.isNaN(Number(form.budget_usd))) {
    parameters.budget_usd = Number(form.budget_usd);
  }
  const tokens = whole(form.budget_tokens);
  if (tokens !== undefined) parameters.budget_tokens = tokens;
  const runtime = whole(form.max_runtime_s);
  if (runtime !== undefined) parameters.max_runtime_s = runtime;
  const seeds = seedIds(form.seed_candidate_ids);
  if (seeds.length > 0) parameters.seed_candidate_ids = seeds;
  return parameters;
}

export function sameForm(a: RunForm, b: RunForm): boolean {
  return (Object.keys(a) as (keyof RunForm)[]).every((k) => a[k].trim() === b[k].trim());
}

/** What the form's own fields say wrong before any preflight: a count that is no whole number, or
 * below 1 (empty is the default, not 0), a budget that is no positive number. The preflight
 * answers the rest (the bounds, what the project has). */
export function formProblems(form: RunForm): Partial<Record<keyof RunForm, string>> {
  const problems: Partial<Record<keyof RunForm, string>> = {};
  const wholeAtLeast = (key: keyof RunForm, least: number, what: string) => {
    const value = form[key].trim();
    if (value === "") return;
    const n = Number(value);
    if (!Number.isInteger(n)) problems[key] = `${what}: a whole number`;
    else if (n < least) problems[key] = `${what}: at least ${least}${key.startsWith("num_") ? " (empty: the default)" : ""}`;
  };
  wholeAtLeast("num_candidates", 1, "Candidates");
  wholeAtLeast("num_scenarios", 1, "Scenarios");
  wholeAtLeast("budget_tokens", 1, "Budget (tokens)");
  wholeAtLeast("max_runtime_s", 1, "Max runtime");
  const usd = form.budget_usd.trim();
  if (usd !== "" && !(Number(usd) > 0)) problems.budget_usd = "Budget (USD): more than 0";
  return problems;
}

const FIELD_LABELS: Record<keyof RunForm, string> = {
  mode: "Mode",
  num_candidates: "Candidates",
  num_scenarios: "Scenarios",
  budget_usd: "Budget (USD)",
  budget_tokens: "Budget (tokens)",
  max_runtime_s: "Max runtime",
  seed_candidate_ids: "Seed candidate ids",
};

/** The form's field a service's field path names ("parameters.num_candidates",
 *  "parameters.seed_candidate_ids[0]"), if it is one of the form's. */
export function formField(path: string): keyof RunForm | null {
  const name = path.startsWith("parameters.") ? path.slice("parameters.".length).split(/[.[]/)[0] : path;
  return name && Object.hasOwn(FIELD_LABELS, name) ? (name as keyof RunForm) : null;
}

/** What the services said wrong with the form's fields (a preflight's blockers, a refused
 *  request's field violations), each in words at its field: "Candidates: 1 to 50". */
export function serviceProblems(said: { field: string; message: string }[]): Partial<Record<keyof RunForm, string>> {
  const problems: Partial<Record<keyof RunForm, string>> = {};
  for (const { field, message } of said) {
    const key = formField(field);
    if (key === null || problems[key]) continue;
    // The service's message starts with the field's path: the label says it in words instead.
    const words = message.startsWith(`${field}: `) ? message.slice(field.length + 2) : message;
    problems[key] = `${FIELD_LABELS[key]}: ${words}`;
  }
  return problems;
}
