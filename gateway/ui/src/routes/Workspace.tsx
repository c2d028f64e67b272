import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useMemo, useRef, useState } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { useLatestRun } from "../api/runs";
import type { StreamEvent } from "../api/events";
import { recommendationOf } from "../api/metadata";
import { Chat, type ChatMode } from "../components/Chat";
import { ProblemPane } from "../components/ProblemPane";
import { RunConfigPanel } from "../components/RunConfigPanel";
import { RunProgressView } from "../components/RunProgress";
import { ErrorBox, Loading, PageError } from "../components/ui";
import { useNow, useTitle } from "../hooks";
import { EMPTY_FORM, formFromRecommendation, sameForm, type RunForm, type Suggestion } from "../runForm";
import { useRunProgress } from "../runProgress";

type Message = Schemas["ChatMessage"];

async function allMessages(sessionId: string): Promise<Message[]> {
  const messages: Message[] = [];
  let token = "";
  do {
    const page = await unwrap(
      api.GET("/api/chat-sessions/{chat_session_id}/messages", {
        params: { path: { chat_session_id: sessionId }, query: { page_size: 1000, page_token: token } },
      }),
    );
    messages.push(...page.chat_messages);
    token = page.next_page_token;
  } while (token);
  return messages;
}

interface Chosen {
  form: RunForm;
  suggestion: Suggestion | null;
}

function chosenKey(projectId: string): string {
  return `crucible:run-form:${projectId}`;
}

function restoreChosen(projectId: string): Chosen | null {
  try {
    const saved = sessionStorage.getItem(chosenKey(projectId));
    return saved ? (JSON.parse(saved) as Chosen) : null;
  } catch {
    return null; // unreadable (another version's): the latest recommendation, as on a first visit
  }
}

function suggestionOf(message: Message): Suggestion | null {
  const config = recommendationOf(message.metadata);
  return config?.mode ? { messageId: message.id, sessionId: message.chat_session_id, form: formFromRecommendation(config) } : null;
}

function useMessages(sessionId: string | null) {
  return useQuery({
    queryKey: ["messages", sessionId],
    queryFn: () => allMessages(sessionId ?? ""),
    enabled: sessionId !== null,
  });
}

function LiveRun({ run, onEvent }: { run: Schemas["RunRead"]; onEvent: (event: StreamEvent) => void }) {
  const { progress, stream } = useRunProgress(run.id, onEvent);
  const now = useNow(progress.ended ? null : 1000);
  return (
    <section className="live-run" aria-label="Latest run">
      <header className="pane-head">
        <h3>
          Run <Link to={`/runs/${run.id}`}>{run.id.slice(0, 8)}</Link>
        </h3>
        <Link to={`/runs/${run.id}`} className="small">
          Open run
        </Link>
      </header>
      <RunProgressView progress={progress} stream={stream.state} startedAt={run.started_at ?? run.created_at} now={now} run={run} />
      {stream.problem && <ErrorBox error={stream.problem} />}
    </section>
  );
}

export default function Workspace() {
  const { projectId = "" } = useParams();
  const queryClient = useQueryClient();
  const project = useQuery({
    queryKey: ["project", projectId],
    queryFn: () => unwrap(api.GET("/api/projects/{project_id}", { params: { path: { project_id: projectId } } })),
  });
  useTitle(project.data?.title ?? "Project");
  const sessions = useQuery({
    queryKey: ["chat-sessions", projectId],
    queryFn: () =>
      unwrap(api.GET("/api/projects/{project_id}/chat-sessions", { params: { path: { project_id: projectId }, query: { page_size: 100 } } })),
  });
  // The setup session holds the recommendations the Run Config panel follows and, unless a run names
  // another, the post-run summaries; the analysis session is where the runs are asked about.
  const [mode, setMode] = useState<ChatMode>("setup");
  // Each the latest of its mode (the list is newest first), as the run service picks the setup
  // session it posts a summary to; a project with none yet gets one at its first message. Never the
  // other mode's: an analysis asked first must not become the setup conversation.
  const setupId = sessions.data?.chat_sessions.find((s) => s.mode === "setup")?.id ?? null;
  const analysisId = sessions.data?.chat_sessions.find((s) => s.mode === "analysis")?.id ?? null;
  const sessionId = mode === "setup" ? setupId : analysisId;
  const messages = useMessages(setupId);
  const shown = useMessages(sessionId);
  const latestRun = useLatestRun(projectId);
  const runPane = useRef<HTMLDivElement>(null);
  const [startedRun, setStartedRun] = useState<Schemas["RunRead"] | null>(null);
  // The run just started, until the project's list (read again as its events come) has it: then
  // the list's copy, which says how it ended and what it cost.
  const listed = latestRun.data?.runs[0] ?? null;
  const run = startedRun && listed?.id !== startedRun.id ? startedRun : listed;

  const ensureSession = useCallback(async () => {
    if (sessionId) return sessionId;
    const created = await unwrap(
      api.POST("/api/projects/{project_id}/chat-sessions", {
        params: { path: { project_id: projectId } },
        body: { mode, title: mode === "setup" ? "Setup" : "Analysis" },
      }),
    );
    queryClient.setQueryData(["messages", created.id], []);
    await queryClient.invalidateQueries({ queryKey: ["chat-sessions", projectId] });
    return created.id;
  }, [sessionId, mode, projectId, queryClient]);

  // The form follows the latest recommendation until the user edits it or picks another card.
  const latest = useMemo(() => {
    const list = messages.data ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      const message = list[i];
      const suggestion = message && message.role === "agent" ? suggestionOf(message) : null;
      if (suggestion) return suggestion;
    }
    return null;
  }, [messages.data]);
  // What the user set in the panel (a recommendation picked, a field edited) outlives a reload of
  // the tab, as a form's contents should: kept in the tab's session storage, per project.
  // (Held with its project: the page stays mounted when the address moves to another project.)
  const [held, setHeld] = useState<{ projectId: string; chosen: Chosen | null }>(() => ({
    projectId,
    chosen: restoreChosen(projectId),
  }));
  const chosen = held.projectId === projectId ? held.chosen : restoreChosen(projectId);
  const setChosen = (next: Chosen) => {
    sessionStorage.setItem(chosenKey(projectId), JSON.stringify(next));
    setHeld({ projectId, chosen: next });
  };
  const suggestion = chosen ? chosen.suggestion : latest;
  const form = chosen ? chosen.form : (latest?.form ?? EMPTY_FORM);

  const onRunEvent = useCallback(
    (event: StreamEvent) => {
      if (event.type === "summary.posted" || event.type.startsWith("run.")) {
        void queryClient.invalidateQueries({ queryKey: ["messages"] });
        void queryClient.invalidateQueries({ queryKey: ["runs", projectId] });
      }
    },
    [queryClient, projectId],
  );
  const onTurnDone = useCallback(() => {
    for (const key of ["problem-spec", "world-model", "problem-spec-provenance", "world-model-provenance", "preflight"]) {
      void queryClient.invalidateQueries({ queryKey: [key, projectId] });
    }
  }, [queryClient, projectId]);

  if (project.isError) return <PageError error={project.error} what="project" />;
  return (
    <div className="workspace-page">
      <header className="page-head">
        <h1>{project.data?.title ?? "Project"}</h1>
        {project.data?.description && <p className="muted">{project.data.description}</p>}
      </header>
      <div className="workspace">
        <div className="workspace-chat">
          {sessions.isError && <ErrorBox error={sessions.error} action="Loading the chat" />}
          {shown.isError && <ErrorBox error={shown.error} action="Loading messages" />}
          {sessions.isPending || (sessionId && shown.isPending) ? (
            <Loading what="the chat" />
          ) : (
            <Chat
              // A session of its own each: what is typed or streaming in one does not show in the other.
              key={mode}
              mode={mode}
              onMode={setMode}
              sessionId={sessionId}
              messages={shown.data ?? []}
              ensureSession={ensureSession}
              // The card says its settings are in the panel only while they are.
              activeSuggestion={suggestion && sameForm(form, suggestion.form) ? suggestion.messageId : null}
              onUse={(message) => {
                const picked = suggestionOf(message);
                if (!picked) return;
                setChosen({ form: picked.form, suggestion: picked });
                // On a narrow screen the panel is far below the chat: brought into sight, where the
                // settings just went (beside the chat, it is in sight already and nothing moves).
                runPane.current?.scrollIntoView?.({ block: "nearest", behavior: "smooth" });
              }}
              onTurnDone={onTurnDone}
            />
          )}
        </div>
        <div className="workspace-problem">
          <ProblemPane projectId={projectId} />
        </div>
        <div className="workspace-run" ref={runPane}>
          <RunConfigPanel
            projectId={projectId}
            // A recommendation is checked against the session it was made in.
            chatSessionId={suggestion?.sessionId ?? setupId ?? undefined}
            form={form}
            suggestion={suggestion}
            onChange={(next) => setChosen({ form: next, suggestion })}
            onStarted={(started) => {
              setStartedRun(started);
              void queryClient.invalidateQueries({ queryKey: ["runs", projectId] });
            }}
          />
          {run && <LiveRun key={run.id} run={run} onEvent={onRunEvent} />}
        </div>
      </div>
    </div>
  );
}
