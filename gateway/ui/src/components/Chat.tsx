import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import Markdown, { type Components } from "react-markdown";
import { useLocation } from "react-router";
import type { Schemas } from "../api/client";
import { wsUrl } from "../api/events";
import { recommendationOf, rejectionsOf, summaryOf } from "../api/metadata";
import { localProblem, type Problem } from "../api/problem";
import { when } from "../format";
import { RecommendationCard } from "./RecommendationCard";
import { SummaryCard } from "./SummaryCard";
import { ErrorBox } from "./ui";

type Message = Schemas["ChatMessage"];

type TurnFrame = Schemas["ChatFrame"];

// An image in a model's answer is not fetched (its address could carry what the chat says to
// anyone's server): its description is shown in its place.
const MARKDOWN_ELEMENTS: Components = {
  img: ({ alt }) => <span className="muted">[image{alt ? `: ${alt}` : ""}]</span>,
};

/** A message's words: the Architect writes Markdown (lists, emphasis, `code`), shown as such (never
 * as HTML: react-markdown renders none of it); a person's message as they typed it. */
export function MessageText({ role, text }: { role: string; text: string }) {
  if (role !== "agent") return <div className="message-text">{text}</div>;
  return (
    <div className="message-text message-markdown">
      <Markdown components={MARKDOWN_ELEMENTS}>{text}</Markdown>
    </div>
  );
}

function MessageView({
  message,
  onUse,
  activeSuggestion,
}: {
  message: Message;
  onUse: (message: Message) => void;
  activeSuggestion: string | null;
}) {
  const recommendation = recommendationOf(message.metadata);
  const summary = summaryOf(message.metadata);
  // Where each thing came from: a run's summary is the run service's report, not the Architect's words.
  const who = message.role === "user" ? "You" : summary ? "Run service" : message.role === "agent" ? "Architect" : "System";
  return (
    <li id={`msg-${message.id}`} className={`message message-${message.role}`}>
      <div className="message-meta">
        <strong>{who}</strong> <time dateTime={message.created_at}>{when(message.created_at)}</time>
      </div>
      {summary ? (
        <SummaryCard summary={summary} rejections={rejectionsOf(message.metadata)} />
      ) : (
        <>
          <MessageText role={message.role} text={message.content} />
          {recommendation && (
            <RecommendationCard
              config={recommendation}
              onUse={() => onUse(message)}
              active={activeSuggestion === message.id}
            />
          )}
        </>
      )}
    </li>
  );
}

/**
 * The conversation with the Architect: one WebSocket per turn, the reply drawn as it streams.
 * A turn never starts a run; a recommendation's "Use these settings" only fills the Run Config panel.
 */
/** A project's two kinds of chat session: setting the problem up, and asking about its runs. */
export type ChatMode = "setup" | "analysis";

const MODES: [ChatMode, string][] = [
  ["setup", "Setup"],
  ["analysis", "Analysis"],
];

export function Chat({
  sessionId,
  messages,
  ensureSession,
  onUse,
  activeSuggestion,
  onTurnDone,
  mode = "setup",
  onMode,
}: {
  onTurnDone: () => void;
  sessionId: string | null;
  messages: Message[];
  ensureSession: () => Promise<string>;
  onUse: (message: Message) => void;
  activeSuggestion: string | null;
  mode?: ChatMode;
  onMode?: (mode: ChatMode) => void;
}) {
  const queryClient = useQueryClient();
  const [draft, setDraft] = useState("");
  const [pending, setPending] = useState<Message | null>(null);
  const [streamed, setStreamed] = useState<string | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);
  const list = useRef<HTMLOListElement>(null);

  const count = messages.length + (pending ? 1 : 0);
  // The conversation ends with a message of the user's that no reply follows: its turn did not end.
  const last = messages.at(-1);
  const unanswered = last && last.role === "user" && !pending ? last : null;
  useEffect(() => {
    const node = list.current;
    if (node) node.scrollTop = node.scrollHeight;
  }, [count, streamed]);
  // A link to one message (#msg-…, from a run's lineage or a provenance entry) scrolls to it.
  const hash = useLocation().hash;
  const loaded = messages.length > 0;
  useEffect(() => {
    if (!loaded || !hash.startsWith("#msg-")) return;
    const target = document.getElementById(hash.slice(1));
    target?.scrollIntoView({ block: "center" });
    target?.classList.add("message-linked");
  }, [hash, loaded]);

  // ``chatMessageId``: a message stored before whose turn was cut short (a reload, a lost
  // connection) is asked again under its own id: answered, not stored twice.
  const send = async (content: string, chatMessageId: string = crypto.randomUUID()) => {
    setBusy(true);
    setProblem(null);
    let session: string;
    try {
      session = await ensureSession();
    } catch (error) {
      setProblem(localProblem("Could not open a chat session", String(error)));
      setBusy(false);
      return;
    }
    const socket = new WebSocket(wsUrl(`/api/ws/chat-sessions/${session}`));
    let userMessage: Message | null = null;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      setBusy(false);
      setStreamed(null);
      setPending(null);
      socket.close();
      void queryClient.invalidateQueries({ queryKey: ["messages", session] });
      onTurnDone();
    };
    socket.onopen = () => socket.send(JSON.stringify({ content, chat_message_id: chatMessageId }));
    socket.onmessage = (event) => {
      const frame = JSON.parse(String(event.data)) as TurnFrame;
      if (frame.type === "user_message") {
        userMessage = frame.message;
        setPending(frame.message);
        setStreamed("");
      } else if (frame.type === "reply.delta") {
        setStreamed((text) => (frame.restart ? "" : (text ?? "")) + frame.text);
      } else if (frame.type === "agent_message") {
        queryClient.setQueryData<Message[]>(["messages", session], (old) => {
          const known = new Set((old ?? []).map((m) => m.id));
          const user = userMessage;
          return [...(old ?? []), ...(user && !known.has(user.id) ? [user] : []), frame.message];
        });
        finish();
      } else if (frame.type === "error") {
        setProblem(frame.problem);
        finish();
      }
    };
    socket.onclose = () => {
      if (!finished) {
        setProblem(localProblem("Chat connection closed", "The chat WebSocket closed before the reply."));
        finish();
      }
    };
    socket.onerror = () => {
      if (finished) return;
      setProblem(localProblem("Chat connection failed", "The chat WebSocket could not connect."));
      finish();
    };
  };

  return (
    <section className="pane chat" aria-labelledby="chat-title">
      <header className="pane-head">
        <h2 id="chat-title">Chat with the Architect</h2>
        {onMode && (
          <fieldset className="segmented chat-mode">
            <legend className="sr-only">Session</legend>
            {MODES.map(([value, label]) => (
              <label key={value}>
                <input type="radio" name="chat-mode" value={value} checked={mode === value} onChange={() => onMode(value)} /> {label}
              </label>
            ))}
          </fieldset>
        )}
      </header>
      <ol className="messages" ref={list} aria-live="polite" aria-label="Messages" tabIndex={0}>
        {messages.length === 0 && !pending && mode === "setup" && (
          <li className="empty">
            Describe your problem: what must hold, what you want, what the world looks like. The Architect turns it into
            a ProblemSpec and a WorldModel, and recommends runs — only the Run button starts one.
          </li>
        )}
        {messages.length === 0 && !pending && mode === "analysis" && (
          <li className="empty">
            Ask about the project's runs: why a candidate was rejected, what its scores rest on, what to try next. The
            Architect reads the latest runs and their results; only the Run button starts one.
          </li>
        )}
        {messages.map((m) => (
          <MessageView key={m.id} message={m} onUse={onUse} activeSuggestion={activeSuggestion} />
        ))}
        {unanswered && !busy && (
          <li className="message-note small">
            <span className="muted">No reply to this message: its turn was cut short (a reload, a lost connection).</span>{" "}
            <button type="button" className="button small" onClick={() => void send(unanswered.content, unanswered.id)}>
              Ask again
            </button>
          </li>
        )}
        {pending && !messages.some((m) => m.id === pending.id) && (
          <MessageView message={pending} onUse={onUse} activeSuggestion={activeSuggestion} />
        )}
        {streamed !== null && (
          <li className="message message-agent message-streaming">
            <div className="message-meta">
              <strong>Architect</strong> <span className="muted">writing…</span>
            </div>
            <MessageText role="agent" text={streamed || "…"} />
          </li>
        )}
      </ol>
      {problem && <ErrorBox error={problem} action="The Architect could not answer" />}
      <form
        className="composer"
        onSubmit={(event) => {
          event.preventDefault();
          const content = draft.trim();
          if (!content || busy) return;
          setDraft("");
          void send(content);
        }}
      >
        <label htmlFor="chat-input" className="sr-only">
          Message to the Architect
        </label>
        <textarea
          id="chat-input"
          rows={2}
          value={draft}
          placeholder={sessionId || mode === "analysis" ? "Message the Architect…" : "Describe your problem to start…"}
          onChange={(event) => setDraft(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === "Enter" && !event.shiftKey) {
              event.preventDefault();
              event.currentTarget.form?.requestSubmit();
            }
          }}
        />
        <button type="submit" className="button" disabled={busy || !draft.trim()}>
          {busy ? "Waiting…" : "Send"}
        </button>
      </form>
    </section>
  );
}
