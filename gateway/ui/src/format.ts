/** How numbers, money and times read everywhere in the UI. */

/** USD, or "unpriced" when the cost is unknown: never $0 for a price nobody knows. */
export function usd(value: number | null | undefined, unpricedCalls = 0): string {
  if (value === null || value === undefined) return "unpriced";
  // Cents for a dollar or more; below, up to four decimals (a run of a few calls costs $0.0123,
  // which cents would round to $0.01 beside a $0.0091), never fewer than two.
  const amount =
    value >= 1 || value === 0
      ? `$${value.toFixed(2)}`
      : value < 0.0001
        ? "< $0.0001"
        : `$${value.toFixed(4).replace(/(\.\d\d\d*?)0+$/, "$1")}`;
  return unpricedCalls > 0 ? `${amount} + ${unpricedCalls} unpriced` : amount;
}

/** The cost of a set of calls: "unpriced" when none of them has a price, else the priced sum and the
 *  rest; calls abandoned mid-answer (maybe billed, for an unknown cost) are named apart. */
export function cost(usage: { usd: number; calls: number; unpriced_calls: number; cancelled_calls?: number }): string {
  const cancelled = usage.cancelled_calls ? ` + ${usage.cancelled_calls} cancelled (cost unknown)` : "";
  if (usage.calls > 0 && usage.unpriced_calls === usage.calls) return "unpriced";
  return usd(usage.usd, usage.unpriced_calls) + cancelled;
}

/** What a running run has spent: "unpriced" while every paid call so far had no price, as ``cost``
 *  says of a set of calls. */
export function spentSoFar(usdSpent: number, unpricedCalls: number): string {
  return usdSpent === 0 && unpricedCalls > 0 ? "unpriced" : usd(usdSpent, unpricedCalls);
}

export function num(value: number | null | undefined, digits = 2): string {
  return value === null || value === undefined || Number.isNaN(value) ? "—" : value.toFixed(digits);
}

export function int(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : value.toLocaleString("en-US");
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

/** A count with its noun in the number it takes: "1 candidate", "3 candidates" (crucible_common.wording). */
export function counted(count: number, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : plural}`;
}

export function humanize(code: string): string {
  return code.replace(/[_.]/g, " ");
}

/** Where a rejected candidate broke its hard constraints, as the run service says it in the chat (crucible_common.wording.broke):
 *  "broke budget in 3 of 4 scenarios; …". */
export function violationsText(violated: { constraint: string; scenarios: number }[], evaluations: number): string {
  return `broke ${violated.map((v) => `${v.constraint} in ${v.scenarios} of ${counted(evaluations, "scenario")}`).join("; ")}`;
}

/** Each project's name in a list to pick from: its title, and when it was made if another has the same title. */
export function projectLabels(projects: { id: string; title: string; created_at: string }[]): Map<string, string> {
  const count = new Map<string, number>();
  for (const p of projects) count.set(p.title, (count.get(p.title) ?? 0) + 1);
  return new Map(projects.map((p) => [p.id, (count.get(p.title) ?? 0) > 1 ? `${p.title} · ${when(p.created_at)}` : p.title]));
}
