import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { runQuery } from "../api/runs";
import type { RunRejection, RunSummary } from "../api/metadata";
import { cost, counted, duration, humanize, num, violationsText } from "../format";
import { scrollsByKeyboard, Status } from "./ui";

/** The post-run summary the run service posts to the chat, labelled as such, with "View results":
 *  its best candidates, and the ones it rejected with the hard constraints they broke. */
export function SummaryCard({ summary, rejections = [] }: { summary: RunSummary; rejections?: RunRejection[] }) {
  // Its final cost is the run's own account (read as the run's page reads it, and shared with it):
  // the summary's contract does not carry it.
  const run = useQuery(runQuery(summary.run_id));
  return (
    <section className="card card-summary" aria-label={summary.summary_label}>
      <header className="card-head">
        <span className="card-kind">{summary.summary_label}</span>
        <Status value={summary.status} />
      </header>
      <p className="muted">
        {humanize(summary.mode)} · {counted(summary.counts.candidates, "candidate")} × {counted(summary.counts.scenarios, "scenario")} ·{" "}
        {counted(summary.counts.evaluations, "evaluation")} · {duration(summary.duration_seconds)}
        {run.data && ` · cost ${cost(run.data.usage)}`}
      </p>
      {summary.top_candidates.length > 0 ? (
        <table ref={scrollsByKeyboard} className="table compact key-2">
          <caption className="sr-only">Top candidates</caption>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Candidate</th>
              <th scope="col">I</th>
              <th scope="col">P</th>
              <th scope="col">R</th>
            </tr>
          </thead>
          <tbody>
            {summary.top_candidates.slice(0, 3).map((c, index) => (
              <tr key={c.candidate_id}>
                <td>{index + 1}</td>
                <td>
                  {c.label}
                  <Notes notes={c.notes} />
                </td>
                <td>{num(c.I)}</td>
                <td>{num(c.P)}</td>
                <td>{num(c.R)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p>No candidate could be ranked.</p>
      )}
      {rejections.length > 0 && (
        <ul className="rejections small warning-text" aria-label="Rejected candidates">
          {rejections.map((r) => (
            <li key={r.candidate_id}>
              Rejected: <strong>{r.title}</strong>, {violationsText(r.violated_constraints, r.evaluations)}
            </li>
          ))}
        </ul>
      )}
      <div className="card-actions">
        <Link className="button" to={summary.links.results_view.startsWith("/") ? summary.links.results_view : `/runs/${summary.run_id}`}>
          View results
        </Link>
      </div>
    </section>
  );
}

const RANKING_LABELS = ["promising", "under_test", "weak", "rejected"];

/** A top candidate's notes, as the run service writes them ("promising; 3 evaluations"): its
 * ranking label as the badge Results shows, then the rest in words. */
function Notes({ notes }: { notes: string }) {
  if (!notes) return null;
  const [first = "", ...rest] = notes.split("; ");
  const ranked = RANKING_LABELS.includes(first);
  return (
    <div className="small muted">
      {ranked && <Status value={first} />} {humanize((ranked ? rest : [first, ...rest]).join("; "))}
    </div>
  );
}
