import { queryOptions, useQuery } from "@tanstack/react-query";
import { api, unwrap } from "./client";

/** A project's newest run (`runs` empty when it has none): one query, shared by the projects list
 *  and the workspace, and refreshed by the run events that invalidate ["runs", projectId]. */
export function useLatestRun(projectId: string) {
  return useQuery({
    queryKey: ["runs", projectId, "latest"],
    queryFn: () =>
      unwrap(api.GET("/api/projects/{project_id}/runs", { params: { path: { project_id: projectId }, query: { page_size: 1 } } })),
  });
}

/** Whether a run has ended: nothing more will run in it. */
export function runEnded(status: string): boolean {
  return ["COMPLETED", "FAILED", "CANCELLED"].includes(status);
}

/** One run, as its page and the chat's summary card read it: one cache entry for both. */
export function runQuery(runId: string) {
  return queryOptions({
    queryKey: ["run", runId],
    queryFn: () => unwrap(api.GET("/api/runs/{run_id}", { params: { path: { run_id: runId } } })),
  });
}
