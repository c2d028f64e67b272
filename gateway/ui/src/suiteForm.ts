/** What is wrong with the suite's fields, by field: text fields, so that what is typed is what is
 *  checked (a number field gives "" for what it cannot read, which would pass for "no limit"). */
export function suiteProblems(costLimit: string, repetitions: string): { costLimit?: string; repetitions?: string } {
  const problems: { costLimit?: string; repetitions?: string } = {};
  const limit = costLimit.trim();
  if (limit !== "" && !(/^\d*\.?\d+$|^\d+\.$/.test(limit) && Number.isFinite(Number(limit)))) {
    problems.costLimit = "an amount in USD, like 0.50, or empty for no limit";
  }
  const times = repetitions.trim();
  if (!/^\d+$/.test(times) || Number(times) < 1 || Number(times) > 20) problems.repetitions = "a whole number from 1 to 20";
  return problems;
}
