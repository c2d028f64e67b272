import { useEffect, useState } from "react";

/** The current time, ticking every `intervalMs` (null: frozen), for elapsed-time displays. */
export function useNow(intervalMs: number | null): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (intervalMs === null) return;
    // A first tick at once: a clock started late (a run that has just begun) would read the time it
    // was made until the first interval.
    const first = setTimeout(() => setNow(Date.now()), 0);
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => {
      clearTimeout(first);
      clearInterval(timer);
    };
  }, [intervalMs]);
  return now;
}

/** The browser tab's title: what the page shows, then "Crucible" (tabs and history tell pages apart). */
export function useTitle(title: string | undefined | null): void {
  useEffect(() => {
    document.title = title ? `${title} · Crucible` : "Crucible";
  }, [title]);
}
