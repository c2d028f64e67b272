import { useQuery } from "@tanstack/react-query";
import { NavLink, Outlet } from "react-router";
import { api } from "../api/client";

function HealthDot() {
  // /healthz answers 503 with the same body when a service is down: read both.
  const { data, isError } = useQuery({
    queryKey: ["healthz"],
    queryFn: async () => {
      const { data, error } = await api.GET("/healthz");
      return data ?? (error as unknown as typeof data);
    },
    refetchInterval: 15_000,
    retry: false,
  });
  const status = isError || !data ? "unreachable" : data.status;
  const down = data?.not_serving ?? [];
  const text =
    status === "ok"
      ? "All services serving"
      : status === "unreachable"
        ? "Gateway unreachable"
        : `Not serving: ${down.join(", ")}`;
  return (
    <div className="health" title={text}>
      <span className={`dot dot-${status}`} aria-hidden="true" />
      <span>{text}</span>
    </div>
  );
}

const LINKS = [
  { to: "/", label: "Projects", end: true },
  { to: "/specs", label: "Specs & Sprints", end: false },
  { to: "/snapshots", label: "Snapshots", end: false },
  { to: "/usage", label: "Usage", end: false },
];

export function Layout() {
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <nav className="rail" aria-label="Main">
        <div className="brand">Crucible</div>
        <ul>
          {LINKS.map((link) => (
            <li key={link.to}>
              <NavLink to={link.to} end={link.end}>
                {link.label}
              </NavLink>
            </li>
          ))}
        </ul>
        <HealthDot />
      </nav>
      <main id="main" className="content">
        <Outlet />
      </main>
    </div>
  );
}
