import { lazy, Suspense, type ComponentType } from "react";
import { createBrowserRouter, useRouteError } from "react-router";
import { Layout } from "./components/Layout";
import { ErrorBox, Loading } from "./components/ui";
import Projects from "./routes/Projects";

// Each screen but the first is its own chunk: the first load stays small.
function page(load: () => Promise<{ default: ComponentType }>) {
  const Page = lazy(load);
  return function LazyPage() {
    return (
      <Suspense fallback={<Loading what="the page" />}>
        <Page />
      </Suspense>
    );
  };
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
    children: [
      { path: "/", element: <Projects /> },
      { path: "/projects/:projectId", element: <Workspace /> },
      { path: "/runs/:runId", element: <RunView /> },
      { path: "/specs", element: <Specs /> },
      { path: "/specs/:specId", element: <SpecView /> },
      { path: "/sprints/:sprintId", element: <SprintView /> },
      { path: "/snapshots", element: <Snapshots /> },
      { path: "/snapshots/new", element: <SnapshotNew /> },
      { path: "/snapshots/:snapshotId", element: <SnapshotView /> },
      { path: "/snapshot-reports/:reportId", element: <SnapshotReport /> },
      { path: "/usage", element: <Usage /> },
      { path: "*", element: <NotFound /> },
    ],
  },
]);
