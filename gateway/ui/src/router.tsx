import type { ComponentType } from "react";
import { createBrowserRouter, Navigate, useRouteError } from "react-router";
import { Layout } from "./components/Layout";
import { ErrorBox } from "./components/ui";
import Projects from "./routes/Projects";

// Each screen but the first is its own chunk: the first load stays small. The router loads a
// screen's chunk before it renders it (route ``lazy``), rather than suspending on a lazy component:
// React holds a suspended screen back for a fixed throttle, which delayed its data requests.
function page(load: () => Promise<{ default: ComponentType }>) {
  return async () => ({ Component: (await load()).default });
}

const Workspace = page(() => import("./routes/Workspace"));
const RunView = page(() => import("./routes/RunView"));
const Specs = page(() => import("./routes/Specs"));
const SpecView = page(() => import("./routes/SpecView"));
const SprintView = page(() => import("./routes/SprintView"));
const Snapshots = page(() => import("./routes/Snapshots"));
const SnapshotNew = page(() => import("./routes/SnapshotNew"));
const SnapshotView = page(() => import("./routes/SnapshotView"));
const SnapshotReport = page(() => import("./routes/SnapshotReport"));
const Usage = page(() => import("./routes/Usage"));
const NotFound = page(() => import("./routes/NotFound"));

function RouteError() {
  const error = useRouteError();
  return (
    <div className="page">
      <h1>Something went wrong</h1>
      <ErrorBox error={error} />
    </div>
  );
}

export const router = createBrowserRouter([
  {
    element: <Layout />,
    errorElement: <RouteError />,
    // Shown while the first screen's chunk loads (each screen but the first is loaded on its way).
    hydrateFallbackElement: <p className="muted">Loading…</p>,
    children: [
      { path: "/", element: <Projects /> },
      // The list's own name is a way to it too (the rail says "Projects").
      { path: "/projects", element: <Navigate to="/" replace /> },
      { path: "/projects/:projectId", lazy: Workspace },
      { path: "/runs/:runId", lazy: RunView },
      { path: "/specs", lazy: Specs },
      { path: "/specs/:specId", lazy: SpecView },
      { path: "/sprints/:sprintId", lazy: SprintView },
      { path: "/snapshots", lazy: Snapshots },
      { path: "/snapshots/new", lazy: SnapshotNew },
      { path: "/snapshots/:snapshotId", lazy: SnapshotView },
      { path: "/snapshot-reports/:reportId", lazy: SnapshotReport },
      { path: "/usage", lazy: Usage },
      { path: "*", lazy: NotFound },
    ],
  },
]);
