import { useQuery } from "@tanstack/react-query";
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
