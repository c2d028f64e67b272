import { useEffect, useState } from "react";

/** The current time, ticking every `intervalMs` (null: frozen), for elapsed-time displays. */
export function useNow(intervalMs: number | null): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (intervalMs === null) return;
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

/** The browser tab's title: what the page shows, then "Crucible" (tabs and history tell pages apart). */
export function useTitle(title: string | undefined | null): void {
  useEffect(() => {
    document.title = title ? `${title} · Crucible` : "Crucible";
  }, [title]);
}
