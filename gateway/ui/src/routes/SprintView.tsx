import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useState } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { type StreamEvent, useEventStream } from "../api/events";
import { asProblem } from "../api/problem";
import { Empty, ErrorBox, Loading, PageError, Status } from "../components/ui";
import { humanize, when } from "../format";
import { useTitle } from "../hooks";

type Sprint = Schemas["SprintRead"];

function eventText(event: StreamEvent): string {
  const d = event.data;
  const parts = ["phase", "name", "tool", "candidate_name", "reason", "summary", "path"]
    .map((key) => d[key])
    .filter((v): v is string => typeof v === "string" && v !== "");
  return parts.join(" · ");
}

function Events({ sprint }: { sprint: Sprint }) {
  const queryClient = useQueryClient();
  const [events, setEvents] = useState<StreamEvent[]>([]);
  const onEvent = useCallback(
    (event: StreamEvent) => {
      setEvents((list) => [...list, event]);
      if (event.type.startsWith("phase.") || event.type.startsWith("sprint.")) {
        void queryClient.invalidateQueries({ queryKey: ["sprint", sprint.id] });
        void queryClient.invalidateQueries({ queryKey: ["artifacts", sprint.id] });
      }
    },
    [queryClient, sprint.id],
  );
  const live = sprint.status !== "planned";
  const stream = useEventStream(live ? `/api/ws/sprints/${sprint.id}` : null, 0, onEvent);
  return (
    <section aria-labelledby="events-title">
      <h2 id="events-title">
        Events <span className="muted small">{live ? (stream.state === "open" ? "live" : stream.state) : "not started"}</span>
      </h2>
      {stream.problem && <ErrorBox error={stream.problem} />}
      {events.length === 0 ? (
        <p className="muted small">{live ? "Waiting for events…" : "Events appear once the sprint starts."}</p>
      ) : (
        <ol className="events" aria-live="polite" aria-label="Sprint events" tabIndex={0}>
          {events.map((e) => (
            <li key={e.sequence}>
              <time className="muted small" dateTime={e.time}>
                {new Date(e.time).toLocaleTimeString("en-GB")}
              </time>{" "}
              <strong>{e.type}</strong> {eventText(e)}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function Artifacts({ sprint }: { sprint: Sprint }) {
  const [open, setOpen] = useState<string | null>(null);
  const artifacts = useQuery({
    queryKey: ["artifacts", sprint.id],
    queryFn: () => unwrap(api.GET("/api/sprints/{sprint_id}/artifacts", { params: { path: { sprint_id: sprint.id }, query: { page_size: 1000 } } })),
  });
  const file = useQuery({
    queryKey: ["artifact", sprint.id, open],
    enabled: open !== null,
    queryFn: async () => {
      const response = await fetch(`/api/sprints/${sprint.id}/artifacts/${encodeURI(open ?? "")}`);
      if (!response.ok) throw asProblem(await response.json().catch(() => ({ status: response.status, title: response.statusText })));
      const type = response.headers.get("content-type") ?? "";
      return type.startsWith("text/") ? await response.text() : null;
    },
  });
  return (
    <section aria-labelledby="artifacts-title">
      <h2 id="artifacts-title">Artifacts</h2>
      {artifacts.isPending && <Loading what="artifacts" />}
      {artifacts.isError && <ErrorBox error={artifacts.error} />}
      {artifacts.data && artifacts.data.artifacts.length === 0 && <Empty>No files yet.</Empty>}
      {artifacts.data && artifacts.data.artifacts.length > 0 && (
        <div className="browser">
          <ul className="files" aria-label="Files">
            {artifacts.data.artifacts.map((a) => (
              <li key={a.path}>
                <button type="button" className="linklike" aria-current={open === a.path ? "true" : undefined} onClick={() => setOpen(a.path)}>
                  {a.path}
                </button>{" "}
                <span className="muted small">{a.size} B</span>{" "}
                <a className="small" href={`/api/sprints/${sprint.id}/artifacts/${encodeURI(a.path)}`} download aria-label={`Download ${a.path}`}>
                  download
                </a>
              </li>
            ))}
          </ul>
          <div className="viewer">
            {open === null && <p className="muted">Pick a file to read it here.</p>}
            {open !== null && file.isPending && <Loading what={open} />}
            {file.isError && <ErrorBox error={file.error} />}
            {open !== null && file.data !== undefined && (
              <>
                <h3>{open}</h3>
                {file.data === null ? <p className="muted">A binary file: download it.</p> : <pre className="code" tabIndex={0}>{file.data}</pre>}
              </>
            )}
          </div>
        </div>
      )}
    </section>
  );
}

export default function SprintView() {
  const { sprintId = "" } = useParams();
  const queryClient = useQueryClient();
  const sprint = useQuery({
    queryKey: ["sprint", sprintId],
    queryFn: () => unwrap(api.GET("/api/sprints/{sprint_id}", { params: { path: { sprint_id: sprintId } } })),
  });
  useTitle(sprint.data ? `Sprint: ${sprint.data.name}` : "Sprint");
  const start = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/sprints/{sprint_id}/start", {
          params: { path: { sprint_id: sprintId } },
          body: { ui_trigger_id: crypto.randomUUID(), ui_trigger_source: "ui" },
        }),
      ),
    onSuccess: (data) => queryClient.setQueryData(["sprint", sprintId], data),
  });
  const cancel = useMutation({
    mutationFn: () =>
      unwrap(api.POST("/api/sprints/{sprint_id}/cancel", { params: { path: { sprint_id: sprintId } }, body: { reason: "cancelled in the web UI" } })),
    onSuccess: (data) => queryClient.setQueryData(["sprint", sprintId], data),
  });
  if (sprint.isPending) return <Loading what="the sprint" />;
  if (sprint.isError) return <PageError error={sprint.error} what="sprint" />;
  const s = sprint.data;
  return (
    <div className="page">
      <header className="page-head">
        <h1>Sprint: {s.name}</h1>
        <Status value={s.status} />
        {s.status === "planned" && (
          <button type="button" className="button button-primary" onClick={() => start.mutate()} disabled={start.isPending}>
            Start sprint
          </button>
        )}
        {s.status === "active" && (
          <button type="button" className="button danger" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
            Cancel sprint
          </button>
        )}
      </header>
      {start.isError && <ErrorBox error={start.error} action="Not started" />}
      {cancel.isError && <ErrorBox error={cancel.error} action="Not cancelled" />}
      <p className="muted">
        Spec <Link to={`/specs/${s.spec_id}`}>{s.spec_id.slice(0, 8)}</Link>
        {s.goal && ` · ${s.goal}`}
        {s.trigger && ` · started ${when(s.trigger.at)} from ${s.trigger.source}`}
      </p>
      {s.failure_reason && <p className="warning-text">{s.failure_reason}</p>}
      <h2>Phases</h2>
      {s.phases.length === 0 ? (
        <p className="muted small">Discovery, Coding and Verification run once the sprint starts.</p>
      ) : (
        <ol className="timeline">
          {s.phases.map((p) => (
            <li key={`${p.phase}-${p.attempt}`}>
              <strong>{humanize(p.phase)}</strong> <Status value={p.status} /> <span className="muted small">attempt {p.attempt} · {when(p.started_at)}</span>
              {p.summary && <div className="small">{p.summary}</div>}
            </li>
          ))}
        </ol>
      )}
      <Events key={s.status === "planned" ? "planned" : "live"} sprint={s} />
      <Artifacts sprint={s} />
    </div>
  );
}
